package synth

import (
	"bufio"
	"io"
	"os"
	"path/filepath"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
)

// writer is where file contents go.
type writer = io.Writer

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// writeAtomic writes a file through a temporary file in the same
// directory, synced and then renamed, so a reader never sees a partial
// file. It returns the size written.
func writeAtomic(path string, fill func(w writer) error) error {
	_, err := writeAtomicN(path, fill)
	return err
}

// writeAtomicN is writeAtomic that returns the size written.
func writeAtomicN(path string, fill func(w writer) error) (int64, error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return 0, err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(tmp, 256<<10)
	cw := &countingWriter{w: bw}
	if err := fill(cw); err != nil {
		return 0, err
	}
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return 0, err
	}
	if err := tmp.Sync(); err != nil {
		return 0, err
	}
	if err := tmp.Close(); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return 0, err
	}
	ok = true
	return cw.n, nil
}

// encodeInstance builds the object for in and encodes it to w.
func encodeInstance(w io.Writer, r *renderer, in *instance) error {
	f := &dicom.File{Preamble: make([]byte, 128), Syntax: dicom.Syntax{UID: dicom.ExplicitVRLittleEndian}}
	if err := buildInstance(f, r, in); err != nil {
		return err
	}
	return dicom.WriteFile(w, f)
}

// writeInstance writes one DICOM file and returns its size.
func writeInstance(path string, r *renderer, in *instance) (int64, error) {
	return writeAtomicN(path, func(w writer) error { return encodeInstance(w, r, in) })
}
