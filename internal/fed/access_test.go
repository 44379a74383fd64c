package fed

import (
	"strings"
	"testing"
)

// TestSnapshotDigestOK: a snapshot answer's digest is 64 lowercase hex
// digits, or empty only when both counts are withheld (zero).
func TestSnapshotDigestOK(t *testing.T) {
	hex := strings.Repeat("0a", 32)
	for _, c := range []struct {
		a    SnapshotAnswer
		want bool
	}{
		{SnapshotAnswer{Digest: hex, Subjects: 20, Studies: 30}, true},
		{SnapshotAnswer{Digest: hex}, true},
		{SnapshotAnswer{Digest: ""}, true},
		{SnapshotAnswer{Digest: "", Subjects: 20}, false},
		{SnapshotAnswer{Digest: "", Studies: 20}, false},
		{SnapshotAnswer{Digest: strings.ToUpper(hex), Subjects: 20, Studies: 30}, false},
		{SnapshotAnswer{Digest: hex[:62], Subjects: 20, Studies: 30}, false},
		{SnapshotAnswer{Digest: hex + "00", Subjects: 20, Studies: 30}, false},
		{SnapshotAnswer{Digest: strings.Repeat("g", 64), Subjects: 20, Studies: 30}, false},
	} {
		if got := c.a.DigestOK(); got != c.want {
			t.Errorf("%q with %d/%d: %v, want %v", c.a.Digest, c.a.Subjects, c.a.Studies, got, c.want)
		}
	}
}
