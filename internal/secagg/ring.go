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
// (values under 2^31 in magnitude, resolution 2^-32), Ring48 the same
// at three quarters of the traffic (values under 2^23, resolution
// 2^-24), Ring128 exact sums of products such as the cross products of
// a regression.
var (
	Ring48  = Encoding{Bits: 48, Frac: 24}
	Ring64  = Encoding{Bits: 64, Frac: 32}
	Ring128 = Encoding{Bits: 128, Frac: 64}
)

// Validate says whether the encoding is one the package handles: Bits
// 128 or a multiple of 8 from 32 to 64, Frac from 0 to Bits-2 (at least
// one integer bit besides the sign).
func (e Encoding) Validate() error {
	if e.Bits != 128 && (e.Bits%8 != 0 || e.Bits < 32 || e.Bits > 64) {
		return fmt.Errorf("secagg: encoding bits %d, want 32, 40, 48, 56, 64 or 128", e.Bits)
	}
	if e.Frac < 0 || e.Frac > e.Bits-2 {
		return fmt.Errorf("secagg: encoding fractional bits %d, want 0 to %d", e.Frac, e.Bits-2)
	}
	return nil
}

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
	if err := e.Validate(); err != nil {
		return nil, err
	}
	out := make([]byte, len(x)*e.Bytes())
	if err := e.encodeInto(out, x); err != nil {
		return nil, err
	}
	return out, nil
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
	return e.decode(data), nil
}

// encodeInto writes the encoding of x into dst, Bytes() per value.
func (e Encoding) encodeInto(dst []byte, x []float64) error {
	eb := e.Bytes()
	lim := math.Ldexp(1, e.Bits-1)
	for i, f := range x {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("secagg: value %d is not a finite number", i)
		}
		v := math.Round(math.Ldexp(f, e.Frac))
		if v >= lim || v < -lim {
			return fmt.Errorf("secagg: value %d is out of the range of the %d-bit encoding with %d fractional bits (magnitude under %g)", i, e.Bits, e.Frac, e.Limit())
		}
		switch eb {
		case 8:
			binary.LittleEndian.PutUint64(dst[8*i:], uint64(int64(v)))
			continue
		case 16:
		default:
			putNarrow(dst[eb*i:], eb, uint64(int64(v)))
			continue
		}
		lo, hi := float128(v)
		binary.LittleEndian.PutUint64(dst[16*i:], lo)
		binary.LittleEndian.PutUint64(dst[16*i+8:], hi)
	}
	return nil
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

// decode turns little-endian ring elements back into values, rounding
// to nearest.
func (e Encoding) decode(b []byte) []float64 {
	eb := e.Bytes()
	out := make([]float64, len(b)/eb)
	shift := uint(64 - e.Bits)
	for i := range out {
		var f float64
		switch eb {
		case 8:
			f = float64(int64(binary.LittleEndian.Uint64(b[8*i:])))
		case 16:
			f = int128Float(binary.LittleEndian.Uint64(b[16*i:]), binary.LittleEndian.Uint64(b[16*i+8:]))
		default:
			f = float64(int64(getNarrow(b[eb*i:], eb)<<shift) >> shift)
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

// addBytes adds src to dst in the ring, both little-endian with eb
// bytes per element.
func addBytes(dst, src []byte, eb int) {
	switch eb {
	case 8:
		for i := 0; i+8 <= len(dst); i += 8 {
			binary.LittleEndian.PutUint64(dst[i:], binary.LittleEndian.Uint64(dst[i:])+binary.LittleEndian.Uint64(src[i:]))
		}
	case 16:
		for i := 0; i+16 <= len(dst); i += 16 {
			lo, c := bits.Add64(binary.LittleEndian.Uint64(dst[i:]), binary.LittleEndian.Uint64(src[i:]), 0)
			hi, _ := bits.Add64(binary.LittleEndian.Uint64(dst[i+8:]), binary.LittleEndian.Uint64(src[i+8:]), c)
			binary.LittleEndian.PutUint64(dst[i:], lo)
			binary.LittleEndian.PutUint64(dst[i+8:], hi)
		}
	default:
		narrow(dst, src, eb, false)
	}
}

// subBytes subtracts src from dst in the ring.
func subBytes(dst, src []byte, eb int) {
	switch eb {
	case 8:
		for i := 0; i+8 <= len(dst); i += 8 {
			binary.LittleEndian.PutUint64(dst[i:], binary.LittleEndian.Uint64(dst[i:])-binary.LittleEndian.Uint64(src[i:]))
		}
	case 16:
		for i := 0; i+16 <= len(dst); i += 16 {
			lo, c := bits.Sub64(binary.LittleEndian.Uint64(dst[i:]), binary.LittleEndian.Uint64(src[i:]), 0)
			hi, _ := bits.Sub64(binary.LittleEndian.Uint64(dst[i+8:]), binary.LittleEndian.Uint64(src[i+8:]), c)
			binary.LittleEndian.PutUint64(dst[i:], lo)
			binary.LittleEndian.PutUint64(dst[i+8:], hi)
		}
	default:
		narrow(dst, src, eb, true)
	}
}

// narrow adds or subtracts elements of eb < 8 bytes, modulo 2^(8·eb):
// read eight bytes at a time where they are there (the bytes above the
// element are the next one's, and ignored), written back eb bytes only,
// and byte by byte at the tail.
func narrow(dst, src []byte, eb int, sub bool) {
	o := 0
	for ; o+8 <= len(dst); o += eb {
		a, b := binary.LittleEndian.Uint64(dst[o:]), binary.LittleEndian.Uint64(src[o:])
		r := a + b
		if sub {
			r = a - b
		}
		storeNarrow(dst[o:], eb, r)
	}
	for ; o+eb <= len(dst); o += eb {
		a, b := getNarrow(dst[o:], eb), getNarrow(src[o:], eb)
		r := a + b
		if sub {
			r = a - b
		}
		putNarrow(dst[o:], eb, r)
	}
}

// storeNarrow writes the low eb bytes of x, little-endian, in as few
// stores as it can.
func storeNarrow(b []byte, eb int, x uint64) {
	switch eb {
	case 4:
		binary.LittleEndian.PutUint32(b, uint32(x))
	case 5:
		binary.LittleEndian.PutUint32(b, uint32(x))
		b[4] = byte(x >> 32)
	case 6:
		binary.LittleEndian.PutUint32(b, uint32(x))
		binary.LittleEndian.PutUint16(b[4:], uint16(x>>32))
	default:
		putNarrow(b, eb, x)
	}
}

// getNarrow reads an element of eb bytes, little-endian.
func getNarrow(b []byte, eb int) uint64 {
	var x uint64
	for i := eb - 1; i >= 0; i-- {
		x = x<<8 | uint64(b[i])
	}
	return x
}

// putNarrow writes the low eb bytes of x, little-endian.
func putNarrow(b []byte, eb int, x uint64) {
	for i := 0; i < eb; i++ {
		b[i] = byte(x >> (8 * i))
	}
}

// stream is one pseudorandom mask: AES-256 in counter mode keyed by key,
// added to or subtracted from a vector.
type stream struct {
	key [32]byte
	sub bool
}

// prgChunk is how many elements' worth of key stream is made at a
// time: a multiple of the AES block for every element size.
const prgChunk = 2048

// minPart is the fewest bytes a goroutine masks when the work is split.
const minPart = 1 << 19

var prgBufs = sync.Pool{New: func() any { b := make([]byte, prgChunk*16); return &b }}

// applyStreams adds (or subtracts) each stream's key stream to dst, a
// little-endian vector of eb bytes per element, splitting dst into
// ranges worked on in parallel. Byte i of dst takes byte i of the key
// stream, so an element's mask is uniform in the ring.
func applyStreams(dst []byte, eb int, streams []stream) error {
	if len(streams) == 0 || len(dst) == 0 {
		return nil
	}
	parts := min(runtime.GOMAXPROCS(0), len(dst)/minPart)
	if parts <= 1 {
		return applyRange(dst, 0, eb, streams)
	}
	// Ranges start on a block boundary that is also an element's.
	align := aes.BlockSize * eb
	per := (len(dst)/parts + align - 1) / align * align
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
			errs[p] = applyRange(dst[start:end], start, eb, streams)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// applyRange applies the streams to dst, which starts at byte offset
// start (a multiple of the block size) of the whole vector. It walks dst
// a chunk at a time, applying every stream to a chunk while it is in
// cache.
func applyRange(dst []byte, start, eb int, streams []stream) error {
	bp := prgBufs.Get().(*[]byte)
	defer prgBufs.Put(bp)
	buf := *bp
	ctrs := make([]cipher.Stream, len(streams))
	for i, s := range streams {
		block, err := aes.NewCipher(s.key[:])
		if err != nil {
			return err
		}
		var iv [aes.BlockSize]byte
		binary.BigEndian.PutUint64(iv[8:], uint64(start/aes.BlockSize))
		ctrs[i] = cipher.NewCTR(block, iv[:])
	}
	chunk := prgChunk * eb
	for off := 0; off < len(dst); off += chunk {
		d := dst[off:min(off+chunk, len(dst))]
		k := buf[:len(d)]
		for i, s := range streams {
			clear(k)
			ctrs[i].XORKeyStream(k, k)
			if s.sub {
				subBytes(d, k, eb)
			} else {
				addBytes(d, k, eb)
			}
		}
	}
	return nil
}
