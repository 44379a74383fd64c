package fl

import (
	"bytes"
	"encoding/binary"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
)

func memUpdate(node string, samples float64, file []byte) StreamUpdate {
	return StreamUpdate{Node: node, Samples: samples, Open: func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(file)), nil
	}}
}

// TestAverageStreamsEqualsFedAvg: the streamed average is, value for
// value, FedAvg of the flattened updates, and bad updates are named.
func TestAverageStreamsEqualsFedAvg(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	layout := []TensorInfo{{Name: "a", DType: "F32", Shape: []int64{300, 1000}}, {Name: "b", DType: "F64", Shape: []int64{7}}, {Name: "c", DType: "F16", Shape: []int64{5}}}
	model := func() []float64 {
		v := make([]float64, 300000+7+5)
		for i := range v {
			v[i] = r.NormFloat64()
		}
		return v
	}
	var ups []Update
	var streams []StreamUpdate
	for i := range 4 {
		v := model()
		ts, err := Unflatten(layout, v)
		if err != nil {
			t.Fatal(err)
		}
		v, _ = Flatten(ts) // the values as stored
		node := string(rune('a' + i))
		ups = append(ups, Update{Node: node, Weights: v, Samples: float64(10 * (i + 1))})
		var b bytes.Buffer
		WriteSafetensors(&b, ts)
		streams = append(streams, memUpdate(node, float64(10*(i+1)), b.Bytes()))
	}
	want, _, err := FedAvg(ups, len(ups[0].Weights))
	if err != nil {
		t.Fatal(err)
	}
	// Bad updates: NaN, wrong shape, not safetensors, no samples.
	bad := model()
	bad[12345] = math.NaN()
	ts, _ := Unflatten(layout, bad)
	var nanFile, shapeFile bytes.Buffer
	WriteSafetensors(&nanFile, ts)
	WriteSafetensors(&shapeFile, []Tensor{{Name: "a", DType: "F32", Shape: []int64{1}, Data: make([]byte, 4)}})
	streams = append(streams, memUpdate("nan", 5, nanFile.Bytes()), memUpdate("shape", 5, shapeFile.Bytes()),
		memUpdate("junk", 5, []byte("hello")), memUpdate("none", 0, nanFile.Bytes()), memUpdate("a", 1, nanFile.Bytes()))

	var out bytes.Buffer
	skipped, err := AverageStreams(&out, layout, streams)
	if err != nil {
		t.Fatal(err)
	}
	if len(skipped) != 5 || skipped["nan"] != SkipNotFinite || skipped["none"] != SkipNoSamples || skipped["junk"] == "" || skipped["shape"] == "" || skipped["a (#8)"] != SkipDuplicate {
		t.Errorf("skipped %v", skipped)
	}
	got, err := ReadSafetensors(&out)
	if err != nil {
		t.Fatal(err)
	}
	if err := SameLayout(layout, Infos(got)); err != nil {
		t.Fatal(err)
	}
	wantT, _ := Unflatten(layout, want)
	for i := range got {
		if !bytes.Equal(got[i].Data, wantT[i].Data) {
			t.Errorf("tensor %s differs from FedAvg", got[i].Name)
		}
	}
	if _, err := AverageStreams(io.Discard, layout, streams[4:]); err != ErrNoUpdates {
		t.Errorf("only bad updates: %v", err)
	}
	if _, err := AverageStreams(io.Discard, []TensorInfo{{Name: "x", DType: "I64", Shape: []int64{1}}}, streams); err == nil {
		t.Error("an integer tensor averaged")
	}
}

// TestAverageStreamsBoundedMemory averages three 128 MiB updates
// generated on the fly; the heap stays small.
func TestAverageStreamsBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("averages 3 × 128 MiB generated updates; skipped under -short")
	}
	layout := []TensorInfo{{Name: "w", DType: "F32", Shape: []int64{32 << 20}}}
	gen := func(seed uint64) func() (io.ReadCloser, error) {
		return func() (io.ReadCloser, error) {
			pr, pw := io.Pipe()
			go func() {
				w, err := NewWriter(pw, layout, nil)
				if err != nil {
					pw.CloseWithError(err)
					return
				}
				buf := make([]byte, 1<<20)
				for k := range 128 {
					for j := 0; j < len(buf); j += 4 {
						binary.LittleEndian.PutUint32(buf[j:], math.Float32bits(float32(seed)+float32(k%3)))
					}
					if _, err := w.Write(buf); err != nil {
						pw.CloseWithError(err)
						return
					}
				}
				pw.CloseWithError(w.Close())
			}()
			return pr, nil
		}
	}
	ups := []StreamUpdate{{Node: "a", Samples: 1, Open: gen(1)}, {Node: "b", Samples: 1, Open: gen(2)}, {Node: "c", Samples: 2, Open: gen(3)}}
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		skipped, err := AverageStreams(pw, layout, ups)
		if err == nil && len(skipped) > 0 {
			t.Errorf("skipped %v", skipped)
		}
		pw.CloseWithError(err)
		errc <- err
	}()
	r, err := NewReader(pr)
	if err != nil {
		t.Fatal(err)
	}
	_, tr, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	var peak uint64
	buf := make([]byte, 1<<20)
	vals := make([]float64, len(buf)/4)
	for k := 0; ; k++ {
		n, err := io.ReadFull(tr, buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		DecodeFloats("F32", buf[:n], vals)
		// (1·(1+m) + 1·(2+m) + 2·(3+m)) / 4 = 9/4 + m.
		if want := 2.25 + float64(k%3); slices.ContainsFunc(vals[:n/4], func(v float64) bool { return v != want }) {
			t.Fatalf("chunk %d: values not %v", k, want)
		}
		if k%16 == 0 {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if grow := int64(peak) - int64(base.HeapInuse); grow > 48<<20 {
		t.Errorf("heap grew by %d MiB averaging 3 × 128 MiB", grow>>20)
	}
}

// BenchmarkAverageStreams averages 10 updates of a 10 MB float32 model
// held as safetensors (both passes); bytes are the updates' size.
func BenchmarkAverageStreams(b *testing.B) {
	model := benchModel(b)
	var streams []StreamUpdate
	for i := range 10 {
		var buf bytes.Buffer
		if err := WriteSafetensors(&buf, model); err != nil {
			b.Fatal(err)
		}
		streams = append(streams, memUpdate(string(rune('a'+i)), float64(i+1), buf.Bytes()))
	}
	b.SetBytes(10 * 10 * 260_000 * 4)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := AverageStreams(io.Discard, Infos(model), streams); err != nil {
			b.Fatal(err)
		}
	}
}
