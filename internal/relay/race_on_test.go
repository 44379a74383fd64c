//go:build race

package relay

// raceOn: the race detector slows the 1 GB transfer tenfold; tests move less.
const raceOn = true
