package main

import (
	"fmt"
	"io"

	"golang.org/x/term"
)

// isTerminal reports whether w is a terminal, to redraw a progress line
// on it.
func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// plural returns "1 object", "2 objects": n and the noun, in the plural
// unless n is one.
func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// progressPrinter draws an ingest's progress line on a terminal and keeps
// it clear of the message lines printed between redraws. Its methods are
// called from the ingest's callbacks, one at a time.
type progressPrinter struct {
	w     io.Writer
	on    bool
	drawn bool
}

func newProgressPrinter(w io.Writer, quiet bool) *progressPrinter {
	return &progressPrinter{w: w, on: !quiet && isTerminal(w)}
}

// draw replaces the progress line.
func (p *progressPrinter) draw(line string) {
	if !p.on {
		return
	}
	fmt.Fprint(p.w, "\r\x1b[K"+line)
	p.drawn = true
}

// clear removes the progress line.
func (p *progressPrinter) clear() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
}

// printf writes a message line, clearing the progress line first.
func (p *progressPrinter) printf(format string, a ...any) {
	p.clear()
	fmt.Fprintf(p.w, format+"\n", a...)
}
