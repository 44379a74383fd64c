package fl

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

func sampleTensors() []Tensor {
	f32 := make([]byte, 4*6)
	EncodeFloats("F32", []float64{1, -2, 3.5, 0, 1e-3, 7}, f32)
	f64 := make([]byte, 8*2)
	EncodeFloats("F64", []float64{math.Pi, -1e300}, f64)
	f16 := make([]byte, 2*3)
	EncodeFloats("F16", []float64{0.5, -65504, 1e-7}, f16)
	return []Tensor{
		{Name: "layer.weight", DType: "F32", Shape: []int64{2, 3}, Data: f32},
		{Name: "layer.bias", DType: "F64", Shape: []int64{2}, Data: f64},
		{Name: "empty", DType: "F32", Shape: []int64{0, 4}, Data: []byte{}},
		{Name: "half", DType: "F16", Shape: []int64{3}, Data: f16},
		{Name: "scalar", DType: "I64", Shape: []int64{}, Data: []byte{7, 0, 0, 0, 0, 0, 0, 0}},
	}
}

func encode(t testing.TB, ts []Tensor) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := WriteSafetensors(&b, ts); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestSafetensorsRoundTrip(t *testing.T) {
	in := sampleTensors()
	file := encode(t, in)
	n := binary.LittleEndian.Uint64(file)
	if n%8 != 0 || file[8] != '{' {
		t.Errorf("header length %d not padded to 8 or not JSON", n)
	}
	out, err := ReadSafetensors(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("%d tensors back, want %d", len(out), len(in))
	}
	for i := range in {
		if out[i].Name != in[i].Name || out[i].DType != in[i].DType || !slices.Equal(out[i].Shape, in[i].Shape) || !bytes.Equal(out[i].Data, in[i].Data) {
			t.Errorf("tensor %d: %+v, want %+v", i, out[i], in[i])
		}
	}
	if err := SameLayout(Infos(in), Infos(out)); err != nil {
		t.Error(err)
	}
	// A header that a third party wrote, in another key order with
	// metadata, reads the same.
	hdr := `{"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`
	file = append(binary.LittleEndian.AppendUint64(nil, uint64(len(hdr))), hdr...)
	file = append(file, 0, 0, 128, 63, 0, 0, 0, 64) // 1.0, 2.0
	sr, err := NewReader(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if sr.Metadata()["format"] != "pt" || sr.DataSize() != 8 {
		t.Errorf("metadata %v, data size %d", sr.Metadata(), sr.DataSize())
	}
	ts, err := ReadSafetensors(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	v, err := Flatten(ts)
	if err != nil || ts[0].Name != "a" || !slices.Equal(v, []float64{1, 2}) {
		t.Errorf("third-party file: %v %v %v", ts, v, err)
	}
}

func TestSafetensorsBadInput(t *testing.T) {
	good := encode(t, sampleTensors()[:2])
	withHeader := func(h string, data int) []byte {
		b := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
		return append(append(b, h...), make([]byte, data)...)
	}
	cases := map[string][]byte{
		"empty":            {},
		"short length":     {1, 2, 3},
		"huge header":      binary.LittleEndian.AppendUint64(nil, MaxHeader+1),
		"header past end":  binary.LittleEndian.AppendUint64(nil, 1000),
		"not json":         withHeader("hello", 0),
		"array":            withHeader("[1,2]", 0),
		"bad dtype":        withHeader(`{"a":{"dtype":"X9","shape":[1],"data_offsets":[0,4]}}`, 4),
		"negative shape":   withHeader(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, 4),
		"size mismatch":    withHeader(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, 4),
		"gap":              withHeader(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8),
		"overlap":          withHeader(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8),
		"duplicate":        withHeader(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8),
		"unknown field":    withHeader(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}`, 4),
		"missing offsets":  withHeader(`{"a":{"dtype":"F32","shape":[1]}}`, 4),
		"overflow":         withHeader(`{"a":{"dtype":"F64","shape":[4611686018427387904,4],"data_offsets":[0,8]}}`, 8),
		"short data":       withHeader(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 4),
		"trailing data":    withHeader(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 5),
		"trailing json":    withHeader(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}} {}`, 4),
		"bad metadata":     withHeader(`{"__metadata__":{"a":1}}`, 0),
		"empty name":       withHeader(`{"":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 4),
		"huge claimed":     withHeader(`{"a":{"dtype":"F64","shape":[1000000000000],"data_offsets":[0,8000000000000]}}`, 16),
		"truncated":        good[:len(good)-3],
		"truncated header": good[:20],
	}
	for name, b := range cases {
		if _, err := ReadSafetensors(bytes.NewReader(b)); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !errors.Is(err, ErrSafetensors) {
			t.Errorf("%s: error %v is not ErrSafetensors", name, err)
		}
	}
}

func TestSafetensorsWriterChecks(t *testing.T) {
	infos := []TensorInfo{{Name: "a", DType: "F32", Shape: []int64{2}}, {Name: "b", DType: "F64", Shape: []int64{1}}}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, infos, map[string]string{"round": "3"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteTensor(Tensor{Name: "b", DType: "F64", Shape: []int64{1}, Data: make([]byte, 8)}); err == nil {
		t.Error("tensor out of order accepted")
	}
	if err := w.WriteTensor(Tensor{Name: "a", DType: "F32", Shape: []int64{2}, Data: make([]byte, 4)}); err == nil {
		t.Error("short tensor accepted")
	}
	if _, err := w.Write(make([]byte, 3)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err == nil {
		t.Error("Close with data missing succeeded")
	}
	if _, err := w.Write(make([]byte, 14)); err == nil {
		t.Error("bytes past the declared data accepted")
	}
	if _, err := w.Write(make([]byte, 13)); err != nil || w.Close() != nil {
		t.Fatal(err)
	}
	sr, err := NewReader(&buf)
	if err != nil || sr.Metadata()["round"] != "3" {
		t.Fatal(err)
	}
	for _, bad := range [][]TensorInfo{
		{{Name: "", DType: "F32", Shape: []int64{1}}},
		{{Name: "a", DType: "F32"}, {Name: "a", DType: "F32"}},
		{{Name: "a", DType: "Q4", Shape: []int64{1}}},
		{{Name: "__metadata__", DType: "F32"}},
	} {
		if _, err := NewWriter(io.Discard, bad, nil); err == nil {
			t.Errorf("NewWriter(%v) accepted", bad)
		}
	}
}

func TestFlattenAndFloats(t *testing.T) {
	ts := sampleTensors()[:4]
	v, err := Flatten(ts)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{1, -2, 3.5, 0, float64(float32(1e-3)), 7, math.Pi, -1e300, 0.5, -65504, float64(halfToFloat32(float64ToHalf(1e-7)))}
	if !slices.Equal(v, want) {
		t.Fatalf("flatten %v, want %v", v, want)
	}
	back, err := Unflatten(Infos(ts), v)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ts {
		if !bytes.Equal(back[i].Data, ts[i].Data) || back[i].Name != ts[i].Name {
			t.Errorf("tensor %d changed through flatten", i)
		}
	}
	if _, err := Unflatten(Infos(ts), v[1:]); err == nil {
		t.Error("short vector accepted")
	}
	if _, err := Unflatten(Infos(ts), append(v, 1)); err == nil {
		t.Error("long vector accepted")
	}
	if _, err := Flatten(sampleTensors()); err == nil {
		t.Error("an I64 tensor flattened")
	}
	// Half precision: every one of the 65536 values goes to float and
	// back unchanged (NaNs stay NaN); rounding ties go to even.
	for h := range 1 << 16 {
		f := float64(halfToFloat32(uint16(h)))
		if g := float64ToHalf(f); g != uint16(h) && !(f != f && g&0x7c00 == 0x7c00 && g&0x3ff != 0) {
			t.Fatalf("half %#04x -> %v -> %#04x", h, f, g)
		}
	}
	for _, c := range []struct {
		v float64
		h uint16
	}{{1 + 1.0/2048, 0x3c00}, {1 + 3.0/2048, 0x3c02}, {65519, 0x7bff}, {65520, 0x7c00}, {1e-8, 0}, {math.Copysign(0, -1), 0x8000}, {0x1p-24 * 1.5, 2}} {
		if g := float64ToHalf(c.v); g != c.h {
			t.Errorf("half(%v) = %#04x, want %#04x", c.v, g, c.h)
		}
	}
	// bfloat16 rounds to nearest even.
	b := make([]byte, 2)
	EncodeFloats("BF16", []float64{1 + 1.0/256}, b) // a tie: stays 1
	out := make([]float64, 1)
	DecodeFloats("BF16", b, out)
	if out[0] != 1 {
		t.Errorf("bf16 tie gave %v", out[0])
	}
	if EncodeFloats("I32", []float64{1}, make([]byte, 4)) == nil || DecodeFloats("F32", make([]byte, 3), out) == nil {
		t.Error("bad float conversions accepted")
	}
}

// TestSafetensorsStream4GB streams a 4 GiB model, generated on the fly,
// from a Writer through a pipe to a Reader, and checks that the heap
// stays bounded and the data arrives unchanged (CRC-32C of both sides).
func TestSafetensorsStream4GB(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 4 GiB through a pipe (a few seconds); skipped under -short")
	}
	const tensors, perTensor = 4, 1 << 30 // bytes
	var infos []TensorInfo
	for i := range tensors {
		infos = append(infos, TensorInfo{Name: "block" + string(rune('0'+i)) + ".weight", DType: "F32", Shape: []int64{perTensor / 4 / 1024, 1024}})
	}
	table := crc32.MakeTable(crc32.Castagnoli)
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)

	pr, pw := io.Pipe()
	wsum := make(chan uint32, 1)
	go func() {
		w, err := NewWriter(pw, infos, nil)
		if err != nil {
			pw.CloseWithError(err)
			return
		}
		buf := make([]byte, 1<<20)
		var crc uint32
		x := uint64(1)
		for range tensors * perTensor / len(buf) {
			for j := 0; j < len(buf); j += 8 {
				x = x*6364136223846793005 + 1442695040888963407
				binary.LittleEndian.PutUint64(buf[j:], x)
			}
			crc = crc32.Update(crc, table, buf)
			if _, err := w.Write(buf); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		wsum <- crc
		pw.CloseWithError(w.Close())
	}()

	start := time.Now()
	sr, err := NewReader(pr)
	if err != nil {
		t.Fatal(err)
	}
	if sr.DataSize() != tensors*perTensor {
		t.Fatalf("data size %d", sr.DataSize())
	}
	var crc uint32
	var peak uint64
	var seen int
	buf := make([]byte, 1<<20)
	var read int64
	for {
		ti, r, err := sr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ti.Name != infos[seen].Name || !slices.Equal(ti.Shape, infos[seen].Shape) {
			t.Fatalf("tensor %d is %+v", seen, ti)
		}
		seen++
		for {
			n, err := r.Read(buf)
			crc = crc32.Update(crc, table, buf[:n])
			read += int64(n)
			if read%(256<<20) < int64(n) {
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if seen != tensors || read != tensors*perTensor {
		t.Fatalf("read %d tensors, %d bytes", seen, read)
	}
	if w := <-wsum; w != crc {
		t.Fatalf("checksum written %08x, read %08x", w, crc)
	}
	if grow := int64(peak) - int64(base.HeapInuse); grow > 32<<20 {
		t.Errorf("heap grew by %d MiB streaming 4 GiB", grow>>20)
	}
	t.Logf("4 GiB streamed in %v (%.0f MB/s), heap in use at most %d MiB", time.Since(start),
		float64(read)/1e6/time.Since(start).Seconds(), peak>>20)
}

func FuzzReadSafetensors(f *testing.F) {
	f.Add(encode(f, sampleTensors()))
	f.Add([]byte{})
	f.Add(binary.LittleEndian.AppendUint64(nil, 2))
	h := `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`
	f.Add(append(append(binary.LittleEndian.AppendUint64(nil, uint64(len(h))), h...), 1, 2, 3, 4))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, err := ReadSafetensors(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, ErrSafetensors) && !strings.Contains(err.Error(), "safetensors") {
				t.Fatalf("error not marked: %v", err)
			}
			return
		}
		// What reads writes back and reads the same.
		var out bytes.Buffer
		if err := WriteSafetensors(&out, ts); err != nil {
			t.Fatal(err)
		}
		again, err := ReadSafetensors(&out)
		if err != nil || len(again) != len(ts) {
			t.Fatalf("rewrite: %v", err)
		}
		for i := range ts {
			if again[i].Name != ts[i].Name || !bytes.Equal(again[i].Data, ts[i].Data) {
				t.Fatalf("tensor %d changed", i)
			}
		}
	})
}

func benchModel(b *testing.B) []Tensor {
	r := rand.New(rand.NewPCG(3, 4))
	var ts []Tensor
	for i := range 10 {
		n := 260_000
		v := make([]float64, n)
		for j := range v {
			v[j] = r.NormFloat64()
		}
		d := make([]byte, 4*n)
		EncodeFloats("F32", v, d)
		ts = append(ts, Tensor{Name: "l" + string(rune('0'+i)), DType: "F32", Shape: []int64{int64(n)}, Data: d})
	}
	return ts
}

// BenchmarkWriteSafetensors writes a 10 MB model.
func BenchmarkWriteSafetensors(b *testing.B) {
	ts := benchModel(b)
	b.SetBytes(10 * 260_000 * 4)
	b.ReportAllocs()
	for b.Loop() {
		if err := WriteSafetensors(io.Discard, ts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadSafetensors reads a 10 MB model into memory.
func BenchmarkReadSafetensors(b *testing.B) {
	file := encode(b, benchModel(b))
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadSafetensors(bytes.NewReader(file)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFlatten turns a 10 MB float32 model into float64 values.
func BenchmarkFlatten(b *testing.B) {
	ts := benchModel(b)
	b.SetBytes(10 * 260_000 * 4)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Flatten(ts); err != nil {
			b.Fatal(err)
		}
	}
}
