package airlock

import "testing"

// TestPseudonymInsideAWord: a pseudonym glued to other text by the
// characters pseudonyms themselves hold (MOS-ABC_scan, MOS-ABC.bin) is
// still a pseudonym; the filter split such words only at every
// separator, which cuts the pseudonym itself apart.
func TestPseudonymInsideAWord(t *testing.T) {
	is := PseudonymSet([]string{"MOS-Q86R8K4XQ7GPXMNS"})
	for _, line := range []string{"MOS-Q86R8K4XQ7GPXMNS", "file MOS-Q86R8K4XQ7GPXMNS.bin", "x_MOS-Q86R8K4XQ7GPXMNS_scan", "a.MOS-Q86R8K4XQ7GPXMNS-b"} {
		f := NewLogFilter(Policy{}, is)
		if ok, _ := f.Line(line); ok {
			t.Errorf("%q released", line)
		}
	}
	f := NewLogFilter(Policy{}, is)
	if ok, why := f.Line("epoch 3 loss 0.6931 MOS-OTHER_x"); !ok {
		t.Errorf("an ordinary line held: %s", why)
	}
}
