package charset

import (
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/transform"
)

// codec wraps an x/text encoding used for a whole value (GB18030 and GBK,
// which allow no code extensions).
type codec struct {
	enc  encoding.Encoding
	pool sync.Pool // of *codecState
}

type codecState struct {
	dec *encoding.Decoder
	buf [1024]byte
}

var (
	gb18030Codec = &codec{enc: simplifiedchinese.GB18030}
	gbkCodec     = &codec{enc: simplifiedchinese.GBK}
)

func (c *codec) state() *codecState {
	if st, ok := c.pool.Get().(*codecState); ok {
		return st
	}
	return &codecState{dec: c.enc.NewDecoder()}
}

// decodeWith decodes raw with c into a string allocated once: the first pass
// measures the output, the second writes it.
func decodeWith(c *codec, raw []byte) string {
	st := c.state()
	defer c.pool.Put(st)
	n := st.run(raw, nil)
	var b strings.Builder
	b.Grow(n)
	st.run(raw, &b)
	return b.String()
}

// run decodes raw through the scratch buffer, writing to b when it is not
// nil, and returns the length of the output.
func (st *codecState) run(raw []byte, b *strings.Builder) int {
	st.dec.Reset()
	total := 0
	src := raw
	for len(src) > 0 {
		nDst, nSrc, err := st.dec.Transform(st.buf[:], src, true)
		total += nDst
		if b != nil {
			b.Write(st.buf[:nDst])
		}
		src = src[nSrc:]
		switch {
		case err == nil:
			return total
		case err == transform.ErrShortDst && (nDst > 0 || nSrc > 0):
			continue
		default:
			// Not expected from these decoders; skip a byte so that
			// the loop always progresses.
			if len(src) > 0 {
				total += 3
				if b != nil {
					b.WriteRune(utf8.RuneError)
				}
				src = src[1:]
			}
			st.dec.Reset()
		}
	}
	return total
}

// decodeUTF8 returns raw as a string with each byte that is not part of a
// valid UTF-8 sequence replaced by U+FFFD.
func decodeUTF8(raw []byte) string {
	if utf8.Valid(raw) {
		return string(raw)
	}
	n := 0
	for i := 0; i < len(raw); {
		_, size := utf8.DecodeRune(raw[i:])
		if size == 1 && raw[i] >= utf8.RuneSelf {
			n += 3
		} else {
			n += size
		}
		i += size
	}
	var b strings.Builder
	b.Grow(n)
	for i := 0; i < len(raw); {
		_, size := utf8.DecodeRune(raw[i:])
		if size == 1 && raw[i] >= utf8.RuneSelf {
			b.WriteRune(utf8.RuneError)
		} else {
			b.Write(raw[i : i+size])
		}
		i += size
	}
	return b.String()
}

// encodeWith encodes text with c, reporting the first character it lacks.
func encodeWith(c *codec, text, name string) ([]byte, error) {
	if !utf8.ValidString(text) {
		return nil, fmt.Errorf("%w: invalid UTF-8 in text", ErrUnrepresentable)
	}
	if isASCIIString(text) {
		return []byte(text), nil
	}
	e := c.enc.NewEncoder()
	out, err := e.Bytes([]byte(text))
	// The x/text encoders produce wrong codes for some private-use
	// characters, so the result is checked by decoding it.
	if err == nil && decodeWith(c, out) == text {
		return out, nil
	}
	for _, r := range text {
		b, err := e.Bytes(utf8.AppendRune(nil, r))
		if err != nil || decodeWith(c, b) != string(r) {
			return nil, fmt.Errorf("%w: %U %q in %s", ErrUnrepresentable, r, r, name)
		}
	}
	return nil, fmt.Errorf("%w: text in %s", ErrUnrepresentable, name)
}

func isASCIIString(t string) bool {
	for i := 0; i < len(t); i++ {
		if t[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
