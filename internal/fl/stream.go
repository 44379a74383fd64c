package fl

import (
	"errors"
	"fmt"
	"io"
	"math"
)

// StreamUpdate is one node's update held as a safetensors stream (for
// example a file the hub stored as its chunks arrived), which
// AverageStreams opens twice.
type StreamUpdate struct {
	Node    string
	Samples float64
	Open    func() (io.ReadCloser, error)
}

// streamChunk is how many values AverageStreams reads of each update at
// a time.
const streamChunk = 1 << 18

// AverageStreams writes to w, as safetensors in the layout of global
// (names, dtypes and shapes in data order, as a Reader gives them), the
// FedAvg of updates: the same values as FedAvg of the flattened updates,
// computed tensor by tensor in chunks, so that models of any size are
// averaged with memory bounded by the chunk size, whatever the number of
// updates. A first pass reads each update once and leaves out, naming
// them in skipped with the reason, those that cannot be read, do not
// have the global's layout, hold NaN or infinite values or have no
// samples; the second pass averages the others.
func AverageStreams(w io.Writer, global []TensorInfo, updates []StreamUpdate) (skipped map[string]string, err error) {
	for _, ti := range global {
		if !IsFloat(ti.DType) {
			return nil, fmt.Errorf("fl: tensor %q has dtype %s, which cannot be averaged", ti.Name, ti.DType)
		}
	}
	skipped = map[string]string{}
	seen := map[string]bool{}
	var use []StreamUpdate
	var total float64
	for i, u := range updates {
		name := u.Node
		if name == "" {
			name = fmt.Sprintf("#%d", i)
		}
		if seen[name] {
			skipped[fmt.Sprintf("%s (#%d)", name, i)] = SkipDuplicate
			continue
		}
		seen[name] = true
		if !(u.Samples > 0) || math.IsInf(u.Samples, 0) {
			skipped[name] = SkipNoSamples
			continue
		}
		if reason := checkStream(u, global); reason != "" {
			skipped[name] = reason
			continue
		}
		use = append(use, u)
		total += u.Samples
	}
	if len(use) == 0 {
		return skipped, ErrNoUpdates
	}
	readers := make([]*Reader, len(use))
	for i, u := range use {
		rc, err := u.Open()
		if err != nil {
			return skipped, fmt.Errorf("fl: update of %s: %w", u.Node, err)
		}
		defer rc.Close()
		if readers[i], err = NewReader(rc); err != nil {
			return skipped, fmt.Errorf("fl: update of %s changed: %w", u.Node, err)
		}
	}
	sw, err := NewWriter(w, global, nil)
	if err != nil {
		return skipped, err
	}
	acc := make([]float64, streamChunk)
	vals := make([]float64, streamChunk)
	buf := make([]byte, streamChunk*8)
	out := make([]byte, streamChunk*8)
	for _, ti := range global {
		trs := make([]io.Reader, len(readers))
		for i, r := range readers {
			got, tr, err := r.Next()
			if err != nil || got.Name != ti.Name {
				return skipped, fmt.Errorf("fl: update of %s changed between reads", use[i].Node)
			}
			trs[i] = tr
		}
		left := ti.Elements()
		for left > 0 {
			n := int(min(left, streamChunk))
			clear(acc[:n])
			for i, tr := range trs {
				es := int(DTypeSize(ti.DType))
				if _, err := io.ReadFull(tr, buf[:n*es]); err != nil {
					return skipped, fmt.Errorf("fl: update of %s: %w", use[i].Node, err)
				}
				if err := DecodeFloats(ti.DType, buf[:n*es], vals[:n]); err != nil {
					return skipped, err
				}
				s := use[i].Samples
				for j, v := range vals[:n] {
					acc[j] += s * v
				}
			}
			for j := range acc[:n] {
				acc[j] /= total
			}
			if !allFinite(acc[:n]) {
				return skipped, errors.New("fl: the average overflowed")
			}
			es := int(DTypeSize(ti.DType))
			if err := EncodeFloats(ti.DType, acc[:n], out[:n*es]); err != nil {
				return skipped, err
			}
			if _, err := sw.Write(out[:n*es]); err != nil {
				return skipped, err
			}
			left -= int64(n)
		}
	}
	return skipped, sw.Close()
}

// checkStream reads an update once: "" when it has the global's layout
// and finite values, else the reason to leave it out.
func checkStream(u StreamUpdate, global []TensorInfo) string {
	if u.Open == nil {
		return "unreadable"
	}
	rc, err := u.Open()
	if err != nil {
		return "unreadable"
	}
	defer rc.Close()
	r, err := NewReader(rc)
	if err != nil {
		return "not a safetensors file"
	}
	if err := SameLayout(global, r.Infos()); err != nil {
		return SkipWrongLength + ": " + err.Error()
	}
	buf := make([]byte, 1<<16)
	vals := make([]float64, len(buf)/2)
	for {
		ti, tr, err := r.Next()
		if err == io.EOF {
			return ""
		}
		if err != nil {
			return "not a safetensors file"
		}
		es := DTypeSize(ti.DType)
		for {
			n, err := io.ReadFull(tr, buf[:int64(len(buf))/es*es])
			if n > 0 {
				if DecodeFloats(ti.DType, buf[:n], vals) != nil || !allFinite(vals[:int64(n)/es]) {
					return SkipNotFinite
				}
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				break
			}
			if err != nil {
				return "not a safetensors file"
			}
		}
	}
}
