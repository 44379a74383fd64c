package airlock

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// BenchmarkCheckTable checks a magnitude table of 1,000 cells.
func BenchmarkCheckTable(b *testing.B) {
	t := Table{Output: FormatTable, Version: 1, Kind: "magnitude", Statistic: "mean", Dimensions: []string{"a", "b"}}
	for i := range 1000 {
		c, v := float64(20+i%50), 10.0
		t.Cells = append(t.Cells, Cell{Key: []string{fmt.Sprint(i / 10), fmt.Sprint(i % 10)}, Count: &c, Value: &v, Top: []float64{15, 14}})
	}
	data, _ := json.Marshal(t)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if v := Check(Policy{}, Permissions{}, Output{Name: "t.json", Data: data}); v.Decision != Release {
			b.Fatal(v)
		}
	}
}

// BenchmarkCheckCSV checks a CSV of 10,000 rows against 10,000
// pseudonyms.
func BenchmarkCheckCSV(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("group,n,mean\n")
	ids := make([]string, 10000)
	for i := range ids {
		ids[i] = fmt.Sprintf("MOSAIC-%016d", i)
		fmt.Fprintf(&sb, "g%d,%d,%d.5\n", i, 10+i%40, i%90)
	}
	data := []byte(sb.String())
	o := Output{Name: "x.csv", Data: data, IsPseudonym: PseudonymSet(ids)}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if v := Check(Policy{}, Permissions{}, o); v.Decision != Review {
			b.Fatal(v)
		}
	}
}

// BenchmarkLogFilter filters typical training log lines.
func BenchmarkLogFilter(b *testing.B) {
	lines := []string{"epoch 12 loss 0.4131 val_auc 0.8123", "reading 1200 slices", "saved checkpoint"}
	f := &LogFilter{IsPseudonym: PseudonymSet([]string{"MOSAIC-ABCDEFGHJKLMNPQR"}), MaxLines: 1 << 62}
	b.ReportAllocs()
	for b.Loop() {
		for _, l := range lines {
			f.Line(l)
		}
	}
}
