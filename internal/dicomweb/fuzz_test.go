package dicomweb

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// fuzzLimits are small so that the fuzzer reaches every limit.
var fuzzLimits = Limits{MaxPartBytes: 32, MaxParts: 4, MaxBodyBytes: 4096, MaxHeaderBytes: 256}

// FuzzPartReader feeds arbitrary bodies to a PartReader with boundary B.
// Properties: no panic; no part hands out more than MaxPartBytes bytes;
// every error but io.EOF is an *Error with a 4xx status; an error that
// is not recoverable is returned again by Next; and a clean end (io.EOF)
// happens only when the body holds the close delimiter, so that a
// truncated body is never taken for a complete one.
func FuzzPartReader(f *testing.F) {
	seeds := []string{
		buildBody(dicomPart("hello"), dicomPart("world")),
		buildBody(dicomPart("hello"), dicomPart("world"))[:40],
		"--B\r\nContent-Type: application/dicom\r\n\r\nhello\r\n--B\r\n",
		"--B--\r\n",
		"",
		"preamble\r\n--B \t\r\nContent-Type: application/dicom; transfer-syntax=1.2.840.10008.1.2.1\r\n\r\nx\r\n--B--",
		buildBody(dicomPart("x\r\n--BX\r\n--B-y--B"), dicomPart(string(bytes.Repeat([]byte("z"), 40)))),
		buildBody(rawPart{"Content-Type: application/dicom+json\r\n", "{}"}, rawPart{"X: a\r\n b\r\n", ""}, dicomPart("ok")),
		buildBody(dicomPart("1"), dicomPart("2"), dicomPart("3"), dicomPart("4"), dicomPart("5")),
		"--B\r\nContent-Type: application/dicom\n\r\nx\r\n--B--",
		"--B\r\n\r\n\r\n--B  x",
	}
	for i, s := range seeds {
		f.Add([]byte(s), uint8(i))
	}
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		var src io.Reader = bytes.NewReader(data)
		switch mode % 3 {
		case 1:
			src = iotest.OneByteReader(src)
		case 2:
			src = iotest.HalfReader(src)
		}
		pr, err := NewPartReader(testCT, src, fuzzLimits)
		if err != nil {
			t.Fatal(err)
		}
		checkErr := func(err error) {
			var e *Error
			if !errors.As(err, &e) || e.Status < 400 || e.Status > 499 {
				t.Fatalf("error %v is not an *Error with a 4xx status", err)
			}
		}
		for calls := 0; ; calls++ {
			if calls > fuzzLimits.MaxParts+2 {
				t.Fatal("Next neither ended nor failed")
			}
			p, err := pr.Next()
			if err == io.EOF {
				if !bytes.HasPrefix(data, []byte("--B--")) && !bytes.Contains(data, []byte("\r\n--B--")) {
					t.Fatalf("clean end without a close delimiter in %q", data)
				}
				return
			}
			if err != nil {
				checkErr(err)
				if !Recoverable(err) {
					if _, again := pr.Next(); again != err {
						t.Fatalf("failure not sticky: %v then %v", err, again)
					}
					return
				}
				if p == nil {
					t.Fatal("recoverable error without its part")
				}
				continue
			}
			var got bytes.Buffer
			if mode&4 != 0 {
				_, err = p.WriteTo(&got)
			} else {
				_, err = io.CopyBuffer(struct{ io.Writer }{&got}, struct{ io.Reader }{p}, make([]byte, 1+int(mode>>3)))
			}
			if int64(got.Len()) > fuzzLimits.MaxPartBytes {
				t.Fatalf("part %d handed out %d bytes, limit %d", p.Index, got.Len(), fuzzLimits.MaxPartBytes)
			}
			if err != nil {
				checkErr(err)
				if errors.Is(err, ErrPartTooLarge) && int64(got.Len()) != fuzzLimits.MaxPartBytes {
					t.Fatalf("part too large after %d bytes, limit %d", got.Len(), fuzzLimits.MaxPartBytes)
				}
				if !Recoverable(err) {
					if _, again := pr.Next(); again != err {
						t.Fatalf("failure not sticky: %v then %v", err, again)
					}
					return
				}
			}
		}
	})
}

// FuzzPartRoundTrip writes arbitrary bodies with PartWriter and reads them
// back: every body must come back byte for byte.
func FuzzPartRoundTrip(f *testing.F) {
	f.Add([]byte("DICM\x00\r\n--x--\r\n"), byte(0))
	f.Add([]byte{}, byte('\n'))
	f.Add([]byte("a\r\nb\r\nc"), byte('\n'))
	f.Fuzz(func(t *testing.T, data []byte, sep byte) {
		bodies := bytes.Split(data, []byte{sep})
		if len(bodies) > 50 {
			bodies = bodies[:50]
		}
		var wire bytes.Buffer
		pw := NewPartWriter(&wire, "")
		for _, b := range bodies {
			w, err := pw.CreatePart(nil)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(b)
		}
		pw.Close()
		pr, err := NewPartReader(pw.ContentType(), iotest.HalfReader(&wire), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range bodies {
			p, err := pr.Next()
			if err != nil {
				t.Fatalf("part %d: %v", i+1, err)
			}
			got, err := io.ReadAll(p)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("part %d: got %q, %v, want %q", i+1, got, err, want)
			}
		}
		if _, err := pr.Next(); err != io.EOF {
			t.Fatalf("after the last part: %v", err)
		}
	})
}
