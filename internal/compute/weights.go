package compute

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/mosaic-imaging/mosaic/internal/fl"
)

// Flatten reads the values of tensors (F32 or F64) as one vector, in
// the tensors' order.
func Flatten(ts []fl.Tensor) ([]float64, error) {
	var out []float64
	for _, t := range ts {
		n := int64(1)
		for _, d := range t.Shape {
			if d < 0 {
				return nil, fmt.Errorf("compute: tensor %s has a negative dimension", t.Name)
			}
			n *= d
		}
		switch t.DType {
		case "F64":
			if int64(len(t.Data)) != n*8 {
				return nil, fmt.Errorf("compute: tensor %s has %d bytes for %d values", t.Name, len(t.Data), n)
			}
			for i := int64(0); i < n; i++ {
				out = append(out, math.Float64frombits(binary.LittleEndian.Uint64(t.Data[8*i:])))
			}
		case "F32":
			if int64(len(t.Data)) != n*4 {
				return nil, fmt.Errorf("compute: tensor %s has %d bytes for %d values", t.Name, len(t.Data), n)
			}
			for i := int64(0); i < n; i++ {
				out = append(out, float64(math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))))
			}
		default:
			return nil, fmt.Errorf("compute: tensor %s is %s; weights are F32 or F64", t.Name, t.DType)
		}
	}
	return out, nil
}

// Unflatten writes v into tensors shaped as template.
func Unflatten(template []fl.Tensor, v []float64) ([]fl.Tensor, error) {
	out := make([]fl.Tensor, len(template))
	k := 0
	for i, t := range template {
		n := 1
		for _, d := range t.Shape {
			n *= int(d)
		}
		if k+n > len(v) {
			return nil, fmt.Errorf("compute: %d values for more weights", len(v))
		}
		nt := fl.Tensor{Name: t.Name, DType: t.DType, Shape: slices.Clone(t.Shape)}
		switch t.DType {
		case "F64":
			nt.Data = make([]byte, 8*n)
			for j := 0; j < n; j++ {
				binary.LittleEndian.PutUint64(nt.Data[8*j:], math.Float64bits(v[k+j]))
			}
		case "F32":
			nt.Data = make([]byte, 4*n)
			for j := 0; j < n; j++ {
				binary.LittleEndian.PutUint32(nt.Data[4*j:], math.Float32bits(float32(v[k+j])))
			}
		default:
			return nil, fmt.Errorf("compute: tensor %s is %s; weights are F32 or F64", t.Name, t.DType)
		}
		k += n
		out[i] = nt
	}
	if k != len(v) {
		return nil, fmt.Errorf("compute: %d values for %d weights", len(v), k)
	}
	return out, nil
}

// sameLayout reports whether two weight files have the same tensor
// names, shapes and dtypes in the same order.
func sameLayout(a, b []fl.Tensor) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].DType != b[i].DType || !slices.Equal(a[i].Shape, b[i].Shape) {
			return false
		}
	}
	return true
}

// EncodeWeights writes a vector as a safetensors file shaped as template.
func EncodeWeights(template []fl.Tensor, v []float64) ([]byte, error) {
	ts, err := Unflatten(template, v)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := fl.WriteSafetensors(&buf, ts); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func floatsBytes(v []float64) []byte {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(x))
	}
	return b
}

func bytesFloats(b []byte) ([]float64, error) {
	if len(b)%8 != 0 {
		return nil, fmt.Errorf("compute: %d bytes are not float64s", len(b))
	}
	v := make([]float64, len(b)/8)
	for i := range v {
		v[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return v, nil
}

func weighted(u *update) []float64 { return fl.Weighted(u.weights, u.samples) }
