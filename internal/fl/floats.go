package fl

import (
	"encoding/binary"
	"fmt"
	"math"
)

// IsFloat says whether dtype is a floating-point dtype Flatten reads
// (F16, BF16, F32, F64).
func IsFloat(dtype string) bool {
	switch dtype {
	case "F16", "BF16", "F32", "F64":
		return true
	}
	return false
}

// DecodeFloats converts little-endian values of dtype in src to dst,
// which must have room for len(src)/size values.
func DecodeFloats(dtype string, src []byte, dst []float64) error {
	es := DTypeSize(dtype)
	if !IsFloat(dtype) {
		return fmt.Errorf("fl: dtype %q is not a float dtype", dtype)
	}
	if int64(len(src))%es != 0 || int64(len(dst)) < int64(len(src))/es {
		return fmt.Errorf("fl: %d bytes of %s do not fit %d values", len(src), dtype, len(dst))
	}
	switch dtype {
	case "F64":
		for i := range len(src) / 8 {
			dst[i] = math.Float64frombits(binary.LittleEndian.Uint64(src[8*i:]))
		}
	case "F32":
		for i := range len(src) / 4 {
			dst[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:])))
		}
	case "BF16":
		for i := range len(src) / 2 {
			dst[i] = float64(math.Float32frombits(uint32(binary.LittleEndian.Uint16(src[2*i:])) << 16))
		}
	case "F16":
		for i := range len(src) / 2 {
			dst[i] = float64(halfToFloat32(binary.LittleEndian.Uint16(src[2*i:])))
		}
	}
	return nil
}

// EncodeFloats converts src to little-endian values of dtype in dst,
// which must hold len(src) values; values round to nearest, ties to
// even, and overflow to infinity as the dtype does.
func EncodeFloats(dtype string, src []float64, dst []byte) error {
	es := DTypeSize(dtype)
	if !IsFloat(dtype) {
		return fmt.Errorf("fl: dtype %q is not a float dtype", dtype)
	}
	if int64(len(dst)) < int64(len(src))*es {
		return fmt.Errorf("fl: %d bytes cannot hold %d values of %s", len(dst), len(src), dtype)
	}
	switch dtype {
	case "F64":
		for i, v := range src {
			binary.LittleEndian.PutUint64(dst[8*i:], math.Float64bits(v))
		}
	case "F32":
		for i, v := range src {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(float32(v)))
		}
	case "BF16":
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], float32ToBF16(float32(v)))
		}
	case "F16":
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], float64ToHalf(v))
		}
	}
	return nil
}

func float32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if f != f { // keep NaN a NaN
		return uint16(b>>16) | 0x40
	}
	// Round to nearest even on the 16 bits dropped.
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf, NaN
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	case exp == 0:
		// Zero or subnormal: mant × 2^-24, exact in float32.
		v := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}

// float64ToHalf rounds v to the nearest half-precision value (ties to
// even), directly from float64 so there is no double rounding.
func float64ToHalf(v float64) uint16 {
	var sign uint16
	if math.Signbit(v) {
		sign = 0x8000
		v = -v
	}
	switch {
	case v != v:
		return sign | 0x7e00
	case v >= 65520: // rounds to infinity
		return sign | 0x7c00
	case v < 0x1p-14: // subnormal or zero: units of 2^-24
		return sign | uint16(math.RoundToEven(v*(1<<24)))
	}
	fr, e := math.Frexp(v) // v = fr × 2^e, fr in [0.5, 1)
	// Normal: 1.m × 2^(e-1); 10 bits of mantissa.
	m := math.RoundToEven((fr*2 - 1) * 1024)
	exp := e - 1 + 15
	if m == 1024 {
		m = 0
		exp++
	}
	if exp >= 31 {
		return sign | 0x7c00
	}
	return sign | uint16(exp)<<10 | uint16(m)
}

// Flatten returns the values of float tensors in order as one vector,
// the form FedAvg and secure aggregation work on.
func Flatten(ts []Tensor) ([]float64, error) {
	var n int64
	for _, t := range ts {
		if !IsFloat(t.DType) {
			return nil, fmt.Errorf("fl: tensor %q has dtype %s, not a float dtype that can be averaged", t.Name, t.DType)
		}
		size, err := t.Info().Size()
		if err != nil {
			return nil, err
		}
		if size != int64(len(t.Data)) {
			return nil, fmt.Errorf("fl: tensor %q has %d bytes, its shape wants %d", t.Name, len(t.Data), size)
		}
		n += size / DTypeSize(t.DType)
	}
	out := make([]float64, n)
	var off int64
	for _, t := range ts {
		k := int64(len(t.Data)) / DTypeSize(t.DType)
		if err := DecodeFloats(t.DType, t.Data, out[off:off+k]); err != nil {
			return nil, err
		}
		off += k
	}
	return out, nil
}

// Unflatten is the inverse of Flatten: v's values as tensors of the
// names, dtypes and shapes of like, in order.
func Unflatten(like []TensorInfo, v []float64) ([]Tensor, error) {
	var off int64
	out := make([]Tensor, len(like))
	for i, ti := range like {
		if !IsFloat(ti.DType) {
			return nil, fmt.Errorf("fl: tensor %q has dtype %s, not a float dtype", ti.Name, ti.DType)
		}
		size, err := ti.Size()
		if err != nil {
			return nil, err
		}
		k := size / DTypeSize(ti.DType)
		if off+k > int64(len(v)) {
			return nil, fmt.Errorf("fl: %d values, the tensors want more", len(v))
		}
		data := make([]byte, size)
		if err := EncodeFloats(ti.DType, v[off:off+k], data); err != nil {
			return nil, err
		}
		out[i] = Tensor{Name: ti.Name, DType: ti.DType, Shape: ti.Shape, Data: data}
		off += k
	}
	if off != int64(len(v)) {
		return nil, fmt.Errorf("fl: %d values, the tensors hold %d", len(v), off)
	}
	return out, nil
}
