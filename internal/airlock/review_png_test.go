package airlock

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"testing"
)

// TestPNGHiddenData: a person shown an image sees its pixels, not bytes
// after its end or text chunks inside it; a PNG carrying either would
// leave with that data once released, so it is refused.
func TestPNGHiddenData(t *testing.T) {
	m := image.NewGray(image.Rect(0, 0, 8, 8))
	m.Set(1, 1, color.Gray{200})
	var img bytes.Buffer
	png.Encode(&img, m)
	plain := img.Bytes()
	if v := Check(Policy{}, Permissions{}, Output{Name: "a.png", Data: plain}); v.Decision != Review {
		t.Fatalf("a plain image: %+v", v)
	}
	rows := []byte("patient,age\nMOSAIC-1,61\nMOSAIC-2,57\n")
	appended := append(bytes.Clone(plain), rows...)
	if v := Check(Policy{}, Permissions{}, Output{Name: "a.png", Data: appended}); v.Decision != Refuse {
		t.Errorf("a PNG with records after its end: %s", v.Decision)
	}
	// A tEXt chunk right after IHDR (8 + 25 bytes).
	var chunk bytes.Buffer
	binary.Write(&chunk, binary.BigEndian, uint32(len(rows)+8))
	body := append([]byte("tEXtComment\x00"), rows...)
	chunk.Reset()
	binary.Write(&chunk, binary.BigEndian, uint32(len(body)-4))
	chunk.Write(body)
	binary.Write(&chunk, binary.BigEndian, crc32.ChecksumIEEE(body))
	withText := append(append(bytes.Clone(plain[:33]), chunk.Bytes()...), plain[33:]...)
	if _, err := png.Decode(bytes.NewReader(withText)); err != nil {
		t.Fatalf("the test's PNG with a text chunk does not decode: %v", err)
	}
	if v := Check(Policy{}, Permissions{}, Output{Name: "a.png", Data: withText}); v.Decision != Refuse {
		t.Errorf("a PNG with records in a text chunk: %s", v.Decision)
	}
}
