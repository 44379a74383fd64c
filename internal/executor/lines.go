package executor

import (
	"bufio"
	"io"
	"strings"
	"sync"
	"unicode/utf8"
)

// MaxLineBytes bounds one logged line; the rest of a longer line is
// dropped and the line ends with " [cut]".
const MaxLineBytes = 4 << 10

// defaultMaxLogBytes bounds the output of one run when the node sets no
// bound.
const defaultMaxLogBytes = 1 << 20

// sink hands lines to a run's log function one at a time (never
// concurrently), each at most MaxLineBytes, all together at most max
// bytes; past that one line says the output was cut and the rest is
// dropped.
type sink struct {
	mu    sync.Mutex
	log   func(string)
	max   int
	total int
	full  bool
	seen  func(string) // optional observer of every line kept
}

func newSink(log func(string), max int) *sink {
	if max <= 0 {
		max = defaultMaxLogBytes
	}
	if log == nil {
		log = func(string) {}
	}
	return &sink{log: log, max: max}
}

// line logs one line, capped.
func (s *sink) line(l string) {
	l = strings.TrimRight(l, "\r")
	if len(l) > MaxLineBytes {
		l = cutUTF8(l, MaxLineBytes) + " [cut]"
	}
	if !utf8.ValidString(l) {
		l = strings.ToValidUTF8(l, "\uFFFD")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen != nil {
		s.seen(l)
	}
	if s.full {
		return
	}
	if s.total+len(l)+1 > s.max {
		s.full = true
		s.log("[output cut: the run's log limit was reached]")
		return
	}
	s.total += len(l) + 1
	s.log(l)
}

// cutUTF8 cuts s to at most n bytes without splitting a character.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// pump reads r line by line into the sink until EOF, never holding more
// than MaxLineBytes of one line in memory.
func (s *sink) pump(r io.Reader) {
	br := bufio.NewReaderSize(r, 16<<10)
	var cur []byte
	over := false
	for {
		frag, err := br.ReadSlice('\n')
		if len(frag) > 0 {
			end := len(frag) > 0 && frag[len(frag)-1] == '\n'
			if end {
				frag = frag[:len(frag)-1]
			}
			if !over {
				room := MaxLineBytes + 1 - len(cur)
				if len(frag) > room {
					cur = append(cur, frag[:room]...)
					over = true
				} else {
					cur = append(cur, frag...)
				}
			}
			if end {
				s.line(string(cur))
				cur, over = cur[:0], false
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if len(cur) > 0 {
				s.line(string(cur))
			}
			// Drain whatever is left so the writer never blocks.
			_, _ = io.Copy(io.Discard, r)
			return
		}
	}
}
