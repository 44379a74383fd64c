package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
	"github.com/mosaic-imaging/mosaic/internal/synth"
	"github.com/mosaic-imaging/mosaic/internal/testutil"
)

// orthancTools returns Debian's Orthanc and its DICOMweb plugin
// (packages orthanc and orthanc-dicomweb, which scripts/test-deps.sh
// installs). Without them the test fails in CI and is skipped elsewhere.
func orthancTools(t *testing.T) (server, plugin string) {
	t.Helper()
	server, err := exec.LookPath("Orthanc")
	if err == nil {
		for _, pat := range []string{"/usr/share/orthanc/plugins/libOrthancDicomWeb.so", "/usr/lib/orthanc/libOrthancDicomWeb.so*"} {
			if m, _ := filepath.Glob(pat); len(m) > 0 {
				return server, m[0]
			}
		}
		err = fmt.Errorf("no DICOMweb plugin (libOrthancDicomWeb.so)")
	}
	msg := fmt.Sprintf("Orthanc with its DICOMweb plugin is needed (Debian packages orthanc and orthanc-dicomweb; scripts/test-deps.sh installs them): %v", err)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return "", ""
}

// freePort returns a TCP port of 127.0.0.1 nothing listened on a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestOrthancPush: a PACS pushes into a node. Orthanc (Debian's, with its
// DICOMweb plugin) is given a synthetic cohort over its REST API and a
// DICOMweb server entry for a running node with a write token; asked to
// send the studies there (/dicom-web/servers/NAME/stow, whose multipart
// boundaries are longer than RFC 2046's 70 characters), it succeeds, and
// the node holds every instance, de-identified: QIDO-RS counts them and
// shows none of the cohort's patient IDs or study UIDs.
func TestOrthancPush(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Orthanc and a node; skipped with -short")
	}
	server, plugin := orthancTools(t)

	// The cohort, without the objects with text burned into the pixels,
	// which the node refuses at its door (and Orthanc would report as a
	// failed send).
	dir := filepath.Join(t.TempDir(), "cohort")
	man, err := synth.Generate(context.Background(), synth.Options{Dir: dir, Patients: 3, Seed: 21})
	if err != nil {
		t.Fatal(err)
	}
	risky := map[string]bool{}
	for _, r := range man.Risky {
		risky[filepath.FromSlash(r.Path)] = true
	}
	var files []string
	originals := map[string]bool{} // patient IDs and study UIDs as sent
	err = filepath.WalkDir(filepath.Join(dir, "dicom"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if risky[rel] {
			return nil
		}
		f, err := dicom.ReadFile(p, dicom.ReadOptions{StopAtPixelData: true})
		if err != nil {
			return err
		}
		for _, tag := range []dicom.Tag{dicom.NewTag(0x0010, 0x0020), dicom.NewTag(0x0020, 0x000D)} {
			if el := f.Dataset.Get(tag); el != nil {
				originals[strings.TrimRight(string(el.Value), " \x00")] = true
			}
		}
		files = append(files, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 || len(originals) < 4 {
		t.Fatalf("the cohort gave %d files and %d patient IDs and study UIDs", len(files), len(originals))
	}

	// The node, with a write token for Orthanc and a read token for QIDO.
	data := filepath.Join(t.TempDir(), "node")
	adm := []string{"--data", data}
	for _, args := range [][]string{{"node", "init"}, {"node", "dataset", "create", "--id", "pacs", "--title", "From the PACS"}} {
		if code, _, errOut := runMosaic(t, append(args, adm...)...); code != 0 {
			t.Fatalf("%v: %s", args, errOut)
		}
	}
	token := func(scope string) string {
		code, out, errOut := runMosaic(t, append([]string{"node", "token", "create", "--scope", scope, "--dataset", "pacs", "--name", "orthanc-" + scope}, adm...)...)
		if code != 0 {
			t.Fatalf("token create: %s", errOut)
		}
		return strings.TrimSpace(out)
	}
	writeTok, readTok := token("write"), token("read")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var nodeLog bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"node", "serve", "--listen", "127.0.0.1:0"}, adm...), func(string) string { return "" }, strings.NewReader(""), pw, &nodeLog)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("node serve: %v", err)
	}
	go io.Copy(io.Discard, pr)
	nodeURL := strings.TrimSpace(strings.TrimPrefix(line, "mosaic node listening on "))
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("node serve did not stop")
		}
	}()

	// Orthanc: loopback only, no DICOM port, the node as a DICOMweb server.
	od := t.TempDir()
	port := freePort(t)
	cfg := map[string]any{
		"Name":                  "mosaic-test",
		"StorageDirectory":      filepath.Join(od, "storage"),
		"IndexDirectory":        filepath.Join(od, "index"),
		"HttpPort":              port,
		"RemoteAccessAllowed":   false,
		"AuthenticationEnabled": false,
		"DicomServerEnabled":    false,
		"Plugins":               []string{plugin},
		"DicomWeb": map[string]any{
			"Enable": true,
			"Root":   "/dicom-web/",
			"Servers": map[string]any{
				"mosaic": map[string]any{
					"Url":         nodeURL + "/dicom-web/pacs/",
					"HttpHeaders": map[string]string{"Authorization": "Bearer " + writeTok},
				},
			},
		},
	}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(od, "orthanc.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	var orthancLog bytes.Buffer
	oc := exec.Command(server, filepath.Join(od, "orthanc.json"))
	oc.Stdout, oc.Stderr = &orthancLog, &orthancLog
	if err := oc.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- oc.Wait() }()
	defer func() {
		oc.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("Orthanc's log:\n%s\nthe node's log:\n%s", tail(orthancLog.String(), 40), tail(nodeLog.String(), 40))
		}
	}()
	orthanc := fmt.Sprintf("http://127.0.0.1:%d", port)
	testutil.Eventually(t, 60*time.Second, func() error {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("Orthanc exited: %v\n%s", err, orthancLog.String())
		default:
		}
		resp, err := http.Get(orthanc + "/system")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("Orthanc /system: %s", resp.Status)
		}
		return nil
	})

	// Upload the files into Orthanc, then have it push their studies.
	post := func(url, ctype string, body io.Reader) (int, []byte) {
		t.Helper()
		resp, err := http.Post(url, ctype, body)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	studies := map[string]bool{}
	for _, p := range files {
		fh, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		code, b := post(orthanc+"/instances", "application/dicom", fh)
		fh.Close()
		var r struct{ ParentStudy, Status string }
		if code != 200 || json.Unmarshal(b, &r) != nil || r.ParentStudy == "" {
			t.Fatalf("Orthanc refused %s: %d %s", p, code, b)
		}
		studies[r.ParentStudy] = true
	}
	var ids []string
	for id := range studies {
		ids = append(ids, id)
	}
	req, _ := json.Marshal(map[string]any{"Resources": ids, "Synchronous": true})
	code, body := post(orthanc+"/dicom-web/servers/mosaic/stow", "application/json", bytes.NewReader(req))
	if code != 200 {
		t.Fatalf("Orthanc's push to the node: %d %s", code, body)
	}

	// The node holds every instance, de-identified.
	q, _ := http.NewRequest("GET", nodeURL+"/dicom-web/pacs/instances?limit=1000&includefield=00100020", nil)
	q.Header.Set("Authorization", "Bearer "+readTok)
	resp, err := http.DefaultClient.Do(q)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	var insts []map[string]struct{ Value []any }
	if resp.StatusCode != 200 || json.Unmarshal(b, &insts) != nil {
		t.Fatalf("QIDO-RS: %s %.300s", resp.Status, b)
	}
	if len(insts) != len(files) {
		t.Errorf("the node holds %d instances after Orthanc pushed %d", len(insts), len(files))
	}
	for _, in := range insts {
		for _, tag := range []string{"00100020", "0020000D"} {
			v := in[tag].Value
			if len(v) != 1 {
				t.Fatalf("instance without %s: %v", tag, in)
			}
			if s, _ := v[0].(string); s == "" || originals[s] {
				t.Fatalf("the node holds %s %q as sent: not de-identified", tag, s)
			}
		}
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
