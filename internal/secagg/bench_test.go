package secagg

import (
	"syscall"
	"time"

	"encoding/binary"
	"encoding/json"
	"math"
	"testing"
)

// A 10 MB float32 model: 2.6 million weights, ten participants, the
// 64-bit encoding.
const (
	benchN      = 10
	benchLength = 10 << 20 / 4
)

// benchRound runs a whole round once, for the benchmarks to repeat one
// of its steps; drop participants fall out after sharing.
func benchRound(b *testing.B, enc Encoding, drop int) (*round, map[string][]float64) {
	b.Helper()
	ps, dir := newParties(b, benchN)
	r := newRound(b, config("bench", ps, benchLength, enc), ps, dir)
	all := sortedKeys(r.clients)
	xs := randomVectors(all, benchLength, 1, 4)
	d := dropouts{afterShares: map[string]bool{}}
	for _, id := range all[:drop] {
		d.afterShares[id] = true
	}
	if _, err := r.run(b, xs, d); err != nil {
		b.Fatal(err)
	}
	return r, xs
}

// BenchmarkMask is one client's masking of the model: encoding and ten
// masks (its own and nine pairwise).
func BenchmarkMask(b *testing.B) { benchMask(b, Ring64) }

// BenchmarkMask48 is BenchmarkMask with the 48-bit encoding.
func BenchmarkMask48(b *testing.B) { benchMask(b, Ring48) }

func benchMask(b *testing.B, enc Encoding) {
	r, xs := benchRound(b, enc, 0)
	c := r.clients["node-03"]
	in := r.routed["node-03"]
	b.SetBytes(benchLength * 4)
	b.ReportAllocs()
	defer reportCPU(b, cpuTime())
	for b.Loop() {
		c.mu.Lock()
		c.masked = nil // mask afresh
		c.mu.Unlock()
		if _, err := c.Mask(in, xs["node-03"]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSum is the server's unmasking of ten vectors with nobody
// dropped (ten self masks to remove).
func BenchmarkSum(b *testing.B) {
	benchSum(b, Ring64, 0)
}

// BenchmarkSum48 is BenchmarkSum with the 48-bit encoding: six bytes a
// weight on the wire instead of eight.
func BenchmarkSum48(b *testing.B) {
	benchSum(b, Ring48, 0)
}

// BenchmarkSumDropped is the same with three of ten dropped after
// sharing: seven self masks and 21 pairwise masks to remove.
func BenchmarkSumDropped(b *testing.B) {
	benchSum(b, Ring64, 3)
}

func benchSum(b *testing.B, enc Encoding, drop int) {
	r, _ := benchRound(b, enc, drop)
	wire, vectors, plain := wireBytes(b, r)
	b.SetBytes(benchLength * 4)
	b.ReportAllocs()
	start := cpuTime()
	for b.Loop() {
		if _, err := r.server.Sum(r.adverts, r.masked, r.reveals); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, start)
	b.ReportMetric(float64(wire)/float64(plain), "wire/plain")
	b.ReportMetric(float64(vectors)/float64(plain), "vectors/plain")
}

// wireBytes counts what every message of the round takes in JSON, as it
// travels, against the plain float32 vectors (raw, and in JSON too).
func wireBytes(b *testing.B, r *round) (wire, vectors, plain int) {
	size := func(v any) int {
		j, err := json.Marshal(v)
		if err != nil {
			b.Fatal(err)
		}
		return len(j)
	}
	// Adverts go up once and down to every client; shares up and down.
	wire += size(r.adverts) * (1 + len(r.clients))
	for _, in := range r.routed {
		wire += 2 * size(in)
	}
	wire += size(r.masked) + size(r.reveals) + size(r.alive)*len(r.alive)
	raw := make([]byte, 4*benchLength)
	for i := 0; i < benchLength; i++ {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(float32(i)))
	}
	plain = size(struct{ Data []byte }{raw}) * len(r.masked)
	return wire, size(r.masked), plain
}

// BenchmarkPlainSum is the baseline: summing ten plain float32 vectors
// as received, what a round without secure aggregation does.
func BenchmarkPlainSum(b *testing.B) {
	vecs := make([][]byte, benchN)
	for i := range vecs {
		vecs[i] = make([]byte, 4*benchLength)
		for j := 0; j < benchLength; j++ {
			binary.LittleEndian.PutUint32(vecs[i][4*j:], math.Float32bits(float32(j%1000)/1000))
		}
	}
	b.SetBytes(benchLength * 4)
	b.ReportAllocs()
	defer reportCPU(b, cpuTime())
	for b.Loop() {
		sum := make([]float64, benchLength)
		for _, v := range vecs {
			for j := range sum {
				sum[j] += float64(math.Float32frombits(binary.LittleEndian.Uint32(v[4*j:])))
			}
		}
	}
}

// BenchmarkMaskStreams is the arithmetic of a client's masking alone
// (ten key streams added to a vector already in memory), without the
// first touch of a fresh model-sized buffer, which the whole Mask pays.
func BenchmarkMaskStreams(b *testing.B) { benchStreams(b, Ring64) }

// BenchmarkMaskStreams48 is BenchmarkMaskStreams with the 48-bit
// encoding.
func BenchmarkMaskStreams48(b *testing.B) { benchStreams(b, Ring48) }

func benchStreams(b *testing.B, enc Encoding) {
	v := make([]byte, enc.Bytes()*benchLength)
	streams := make([]stream, benchN)
	for i := range streams {
		streams[i].key[0] = byte(i)
		streams[i].sub = i%2 == 1
	}
	b.SetBytes(benchLength * 4)
	b.ReportAllocs()
	defer reportCPU(b, cpuTime())
	for b.Loop() {
		if err := applyStreams(v, enc.Bytes(), streams); err != nil {
			b.Fatal(err)
		}
	}
}

// cpuTime is the CPU time the process has used so far, user and system:
// on a loaded machine it says more than the wall clock does.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU milliseconds per operation since start.
func reportCPU(b *testing.B, start time.Duration) {
	if b.N > 0 {
		b.ReportMetric(float64(cpuTime()-start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
	}
}
