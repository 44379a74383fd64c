package secagg

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"runtime"
	"sync"
)

// Encodings in common use: Ring64 suits model weights and averages
// (values under 2^31 in magnitude, resolution 2^-32), Ring128 exact
// sums of products such as the cross products of a regression.
var (
	Ring64  = Encoding{Bits: 64, Frac: 32}
	Ring128 = Encoding{Bits: 128, Frac: 64}
)

// Validate says whether the encoding is one the package handles: Bits
// 64 or 128, Frac from 0 to Bits-2 (at least one integer bit besides
// the sign).
func (e Encoding) Validate() error {
	if e.Bits != 64 && e.Bits != 128 {
		return fmt.Errorf("secagg: encoding bits %d, want 64 or 128", e.Bits)
	}
	if e.Frac < 0 || e.Frac > e.Bits-2 {
		return fmt.Errorf("secagg: encoding fractional bits %d, want 0 to %d", e.Frac, e.Bits-2)
	}
	return nil
}

// words is how many 64-bit words one ring element takes.
func (e Encoding) words() int { return e.Bits / 64 }

// Bytes is the size of one encoded value on the wire.
func (e Encoding) Bytes() int { return e.Bits / 8 }

// Limit is the bound on the magnitude of a value, and of any partial
// sum, that the encoding holds: 2^(Bits-1-Frac).
func (e Encoding) Limit() float64 { return math.Ldexp(1, e.Bits-1-e.Frac) }

// Encode turns values into ring elements (fixed point with Frac
// fractional bits, rounded to nearest, two's complement), little-endian,
// Bytes() per value. A value that is not finite or out of the
// encoding's range is an error naming its index.
func (e Encoding) Encode(x []float64) ([]byte, error) {
	v, err := e.encode(x)
	if err != nil {
		return nil, err
	}
	return wordsToBytes(v), nil
}

// Decode turns ring elements (as Encode gives them, or their sum) back
// into values. The sum of encodings decodes to the sum of the encoded
// values exactly as long as no partial sum left the encoding's range.
func (e Encoding) Decode(data []byte) ([]float64, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	if len(data)%e.Bytes() != 0 {
		return nil, fmt.Errorf("secagg: %d bytes is not a whole number of %d-bit values", len(data), e.Bits)
	}
	return e.decode(bytesToWords(data)), nil
}

// encode is Encode into words: one word per value for 64 bits, two (low,
// high) for 128.
func (e Encoding) encode(x []float64) ([]uint64, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	w := e.words()
	out := make([]uint64, len(x)*w)
	lim := math.Ldexp(1, e.Bits-1)
	for i, f := range x {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("secagg: value %d is not a finite number", i)
		}
		v := math.Round(math.Ldexp(f, e.Frac))
		if v >= lim || v < -lim {
			return nil, fmt.Errorf("secagg: value %d is out of the range of the %d-bit encoding with %d fractional bits (magnitude under %g)", i, e.Bits, e.Frac, e.Limit())
		}
		if w == 1 {
			out[i] = uint64(int64(v))
			continue
		}
		lo, hi := float128(v)
		out[2*i], out[2*i+1] = lo, hi
	}
	return out, nil
}

// float128 converts an integral float64 in [-2^127, 2^127) to two's
// complement 128 bits.
func float128(v float64) (lo, hi uint64) {
	if math.Abs(v) < 1<<63 {
		lo = uint64(int64(v))
		if v < 0 {
			hi = math.MaxUint64
		}
		return lo, hi
	}
	frac, exp := math.Frexp(math.Abs(v)) // |v| = frac·2^exp, 64 <= exp <= 128
	m := uint64(math.Ldexp(frac, 64))    // exact: frac has 53 significant bits
	shift := uint(exp - 64)
	lo = m << shift
	if shift > 0 {
		hi = m >> (64 - shift)
	}
	if v < 0 {
		lo, hi = neg128(lo, hi)
	}
	return lo, hi
}

func neg128(lo, hi uint64) (uint64, uint64) {
	lo, b := bits.Sub64(0, lo, 0)
	hi, _ = bits.Sub64(0, hi, b)
	return lo, hi
}

// decode turns words back into values, rounding to nearest.
func (e Encoding) decode(v []uint64) []float64 {
	w := e.words()
	out := make([]float64, len(v)/w)
	for i := range out {
		var f float64
		if w == 1 {
			f = float64(int64(v[i]))
		} else {
			f = int128Float(v[2*i], v[2*i+1])
		}
		out[i] = math.Ldexp(f, -e.Frac)
	}
	return out
}

// int128Float converts signed 128 bits to the nearest float64.
func int128Float(lo, hi uint64) float64 {
	negative := int64(hi) < 0
	if negative {
		lo, hi = neg128(lo, hi)
	}
	var f float64
	if hi == 0 {
		f = float64(lo)
	} else {
		// Keep the top 64 bits and fold the rest into a sticky bit, so
		// the one rounding to 53 bits is correct.
		n := uint(bits.LeadingZeros64(hi))
		shift := 64 - n
		top := hi<<n | lo>>shift
		if lo<<(64-shift) != 0 {
			top |= 1
		}
		f = math.Ldexp(float64(top), int(shift))
	}
	if negative {
		f = -f
	}
	return f
}

// addVec adds src to dst in the ring.
func addVec(dst, src []uint64, w int) {
	if w == 1 {
		for i := range dst {
			dst[i] += src[i]
		}
		return
	}
	for i := 0; i+1 < len(dst); i += 2 {
		var c uint64
		dst[i], c = bits.Add64(dst[i], src[i], 0)
		dst[i+1], _ = bits.Add64(dst[i+1], src[i+1], c)
	}
}

func wordsToBytes(v []uint64) []byte {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], x)
	}
	return b
}

func bytesToWords(b []byte) []uint64 {
	v := make([]uint64, len(b)/8)
	for i := range v {
		v[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return v
}

// stream is one pseudorandom mask: AES-256 in counter mode keyed by key,
// added to or subtracted from a vector.
type stream struct {
	key [32]byte
	sub bool
}

// prgChunk is how many bytes of key stream are made at a time; a
// multiple of the AES block so a range can start its counter anywhere.
const prgChunk = 32 << 10

// minPart is the fewest words a goroutine masks when the work is split.
const minPart = 1 << 16

var prgBufs = sync.Pool{New: func() any { b := make([]byte, prgChunk); return &b }}

// applyStreams adds (or subtracts) each stream's key stream to dst, word
// by word in the ring of w words per element, splitting dst into ranges
// worked on in parallel.
func applyStreams(dst []uint64, w int, streams []stream) error {
	if len(streams) == 0 || len(dst) == 0 {
		return nil
	}
	parts := runtime.GOMAXPROCS(0)
	if max := len(dst) / minPart; parts > max {
		parts = max
	}
	if parts <= 1 {
		return applyRange(dst, 0, w, streams)
	}
	// Ranges start on a block boundary: a multiple of 2 words.
	per := (len(dst)/parts + 1) &^ 1
	var wg sync.WaitGroup
	errs := make([]error, parts)
	for p := 0; p < parts; p++ {
		start := p * per
		if start >= len(dst) {
			break
		}
		end := min(start+per, len(dst))
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[p] = applyRange(dst[start:end], start, w, streams)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// applyRange applies the streams to dst, which starts at word offset
// start (even) of the whole vector.
func applyRange(dst []uint64, start, w int, streams []stream) error {
	bp := prgBufs.Get().(*[]byte)
	defer prgBufs.Put(bp)
	buf := *bp
	for _, s := range streams {
		block, err := aes.NewCipher(s.key[:])
		if err != nil {
			return err
		}
		var iv [16]byte
		binary.BigEndian.PutUint64(iv[8:], uint64(start/2)) // two words per block
		ctr := cipher.NewCTR(block, iv[:])
		for off := 0; off < len(dst); off += prgChunk / 8 {
			n := min(len(dst)-off, prgChunk/8)
			b := buf[:8*n]
			clear(b)
			ctr.XORKeyStream(b, b)
			d := dst[off : off+n]
			switch {
			case w == 1 && !s.sub:
				for i := range d {
					d[i] += binary.LittleEndian.Uint64(b[8*i:])
				}
			case w == 1:
				for i := range d {
					d[i] -= binary.LittleEndian.Uint64(b[8*i:])
				}
			case !s.sub:
				for i := 0; i+1 < len(d); i += 2 {
					var c uint64
					d[i], c = bits.Add64(d[i], binary.LittleEndian.Uint64(b[8*i:]), 0)
					d[i+1], _ = bits.Add64(d[i+1], binary.LittleEndian.Uint64(b[8*i+8:]), c)
				}
			default:
				for i := 0; i+1 < len(d); i += 2 {
					var c uint64
					d[i], c = bits.Sub64(d[i], binary.LittleEndian.Uint64(b[8*i:]), 0)
					d[i+1], _ = bits.Sub64(d[i+1], binary.LittleEndian.Uint64(b[8*i+8:]), c)
				}
			}
		}
	}
	return nil
}
