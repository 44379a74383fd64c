package hub

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRelayAuditHasNoPatientData: the hub keeps no patient data, so a
// relayed QIDO search by patient name or birth date leaves the names of
// its parameters in the hub's audit log, never their values.
func TestRelayAuditHasNoPatientData(t *testing.T) {
	e := relayTestHub(t, Config{})
	code, body := relayDo(t, e, "GET", "/dicom-web/permits/"+e.granted+"/studies?PatientName=DOE%5EJANE&PatientBirthDate=19620314", e.rosa, "")
	if code != 200 {
		t.Fatalf("relay: %d %s", code, body)
	}
	b, err := os.ReadFile(filepath.Join(e.h.cfg.Data, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if strings.Contains(s, "DOE") || strings.Contains(s, "19620314") {
		t.Errorf("the hub's audit log holds the QIDO query's patient attributes:\n%s", s)
	}
	if !strings.Contains(s, `"PatientBirthDate","PatientName"`) {
		t.Errorf("the hub's audit log does not name the parameters given:\n%s", s)
	}
}
