package dicomweb

import (
	"bytes"
	"io"
	"math/rand/v2"
	"mime"
	"mime/multipart"
	"testing"
)

const (
	benchParts    = 8
	benchPartSize = 512 << 10
)

// benchBody returns a STOW-RS body of benchParts parts of benchPartSize
// bytes and its Content-Type. Random data has a CR every 256 bytes on
// average, as pixel data does; "crlf" data is made of near-delimiters
// ("\r\n--" and the boundary cut short), the worst case of the scan.
func benchBody(b *testing.B, kind string) ([]byte, string) {
	b.Helper()
	var wire bytes.Buffer
	pw := NewPartWriter(&wire, "")
	data := make([]byte, benchPartSize)
	switch kind {
	case "random":
		rng := rand.New(rand.NewPCG(7, 9))
		for i := range data {
			data[i] = byte(rng.UintN(256))
		}
	case "crlf":
		near := []byte("\r\n--" + pw.Boundary()[:10])
		for i := range data {
			data[i] = near[i%len(near)]
		}
	}
	for range benchParts {
		w, err := pw.CreatePart(map[string]string{"Content-Type": "application/dicom; transfer-syntax=1.2.840.10008.1.2.1"})
		if err != nil {
			b.Fatal(err)
		}
		w.Write(data)
	}
	pw.Close()
	return wire.Bytes(), pw.ContentType()
}

func BenchmarkPartReader(b *testing.B) {
	for _, kind := range []string{"random", "crlf"} {
		for _, how := range []string{"WriteTo", "Read32K"} {
			b.Run(kind+"/"+how, func(b *testing.B) {
				wire, ct := benchBody(b, kind)
				buf := make([]byte, 32<<10)
				b.SetBytes(int64(len(wire)))
				b.ReportAllocs()
				for b.Loop() {
					pr, err := NewPartReader(ct, bytes.NewReader(wire), Limits{})
					if err != nil {
						b.Fatal(err)
					}
					n := 0
					for {
						p, err := pr.Next()
						if err == io.EOF {
							break
						}
						if err != nil {
							b.Fatal(err)
						}
						if how == "WriteTo" {
							_, err = io.Copy(io.Discard, p) // uses Part.WriteTo
						} else {
							_, err = io.CopyBuffer(struct{ io.Writer }{io.Discard}, struct{ io.Reader }{p}, buf)
						}
						if err != nil {
							b.Fatal(err)
						}
						n++
					}
					if n != benchParts {
						b.Fatalf("%d parts", n)
					}
				}
			})
		}
	}
}

// BenchmarkMimeMultipart reads the same body with mime/multipart, for
// comparison.
func BenchmarkMimeMultipart(b *testing.B) {
	wire, ct := benchBody(b, "random")
	_, params, err := mime.ParseMediaType(ct)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		mr := multipart.NewReader(bytes.NewReader(wire), params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, p); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkPartWriter(b *testing.B) {
	data := make([]byte, benchPartSize)
	b.SetBytes(benchParts * benchPartSize)
	b.ReportAllocs()
	for b.Loop() {
		pw := NewPartWriter(io.Discard, "")
		for range benchParts {
			w, err := pw.CreatePart(map[string]string{"Content-Location": "/studies/1/series/2/instances/3"})
			if err != nil {
				b.Fatal(err)
			}
			w.Write(data)
		}
		pw.Close()
	}
}
