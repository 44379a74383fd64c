package table

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchCSV makes a table of rows rows and 20 columns: a patient ID, 12
// numbers, 4 whole numbers, 2 categories and a date, with some NA.
func benchCSV(rows int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	b.WriteString("pid")
	for j := 0; j < 12; j++ {
		fmt.Fprintf(&b, ",x%d", j)
	}
	b.WriteString(",n0,n1,n2,n3,sex,stage,visit\n")
	stages := []string{"I", "II", "III", "IV"}
	sexes := []string{"female", "male"}
	for i := 0; i < rows; i++ {
		fmt.Fprintf(&b, "MOS-%016d", i)
		for j := 0; j < 12; j++ {
			if rng.IntN(50) == 0 {
				b.WriteString(",NA")
				continue
			}
			fmt.Fprintf(&b, ",%.4f", rng.NormFloat64()*10)
		}
		fmt.Fprintf(&b, ",%d,%d,%d,%d,%s,%s,20%02d-%02d-%02d\n", rng.IntN(100), rng.IntN(5), rng.IntN(1000), i, sexes[i%2], stages[rng.IntN(4)],
			rng.IntN(25), 1+rng.IntN(12), 1+rng.IntN(28))
	}
	return b.Bytes()
}

// BenchmarkReadCSV reads 1M rows × 20 columns (about 120 MB).
func BenchmarkReadCSV(b *testing.B) {
	in := benchCSV(1_000_000)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		t, err := ReadCSV(bytes.NewReader(in), &Dictionary{Patient: "pid"}, Limits{})
		if err != nil || t.Rows() != 1_000_000 {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeDecode encodes and decodes 1M rows × 20 columns.
func BenchmarkEncodeDecode(b *testing.B) {
	t, err := ReadCSV(bytes.NewReader(benchCSV(1_000_000)), &Dictionary{Patient: "pid"}, Limits{})
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	t.Encode(&buf)
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if err := t.Encode(&buf); err != nil {
			b.Fatal(err)
		}
		if _, err := Decode(bytes.NewReader(buf.Bytes())); err != nil {
			b.Fatal(err)
		}
	}
}
