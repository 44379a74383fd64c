package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// benchEntry is a typical federated-search record: a query hash and counts
// for a few datasets.
var benchEntry = Entry{
	Actor:   "user:alice",
	Action:  "search",
	Subject: "q-0193a1f2",
	Detail: map[string]any{
		"query_sha256": "3b1f0c2e9d5a4b7c8e6f1a2d3c4b5a697887766554433221100ffeeddccbbaa9",
		"counts":       map[string]int{"hospital-a/lung": 120, "hospital-b/breast": 40, "registry-c/prostate": 0},
		"nodes":        map[string]string{"hospital-a": "ok", "hospital-b": "ok", "registry-c": "late"},
	},
}

// BenchmarkAppend appends from one goroutine, each Append waiting for its
// own fsync: the latency of one audited action.
func BenchmarkAppend(b *testing.B) {
	l, err := Open(filepath.Join(b.TempDir(), "audit.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if _, err := l.Append(benchEntry); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "appends/s")
}

// BenchmarkAppendParallel appends from 16 goroutines per CPU, as a busy
// hub would: their fsyncs are grouped.
func BenchmarkAppendParallel(b *testing.B) {
	l, err := Open(filepath.Join(b.TempDir(), "audit.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.ReportAllocs()
	b.SetParallelism(16)
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Append(benchEntry); err != nil {
				b.Error(err)
				return
			}
			n.Add(1)
		}
	})
	b.ReportMetric(float64(n.Load())/b.Elapsed().Seconds(), "appends/s")
}

// BenchmarkVerify checks a log of 10,000 records.
func BenchmarkVerify(b *testing.B) {
	const n = 10000
	path := filepath.Join(b.TempDir(), "audit.log")
	l, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	for range n {
		if _, err := l.Append(benchEntry); err != nil {
			b.Fatal(err)
		}
	}
	l.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	runs := 0
	for b.Loop() {
		if s, err := Verify(bytes.NewReader(data)); err != nil || s.Records != n {
			b.Fatal(s, err)
		}
		runs++
	}
	b.ReportMetric(float64(n*runs)/b.Elapsed().Seconds(), "records/s")
}
