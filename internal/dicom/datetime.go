package dicom

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Precision says how much of a DA, TM or DT value was given.
type Precision int

// Precisions from coarsest to finest.
const (
	PrecisionYear Precision = iota
	PrecisionMonth
	PrecisionDay
	PrecisionHour
	PrecisionMinute
	PrecisionSecond
	PrecisionFraction
)

// DateTime is a parsed DA, TM or DT value. Time holds the value (in UTC
// unless the value carried an offset, or TZ was given); Precision says how
// much was present, so that a writer can keep the same form.
type DateTime struct {
	Time      time.Time
	Precision Precision
	// FracDigits is the number of fraction-of-second digits given.
	FracDigits int
	// HasOffset reports whether a DT value carried its own UTC offset.
	HasOffset bool
}

// ParseDA parses a DA value (YYYYMMDD; the ACR-NEMA form YYYY.MM.DD is
// accepted too).
func ParseDA(s string) (DateTime, error) {
	s = strings.TrimSpace(s)
	if len(s) == 10 && s[4] == '.' && s[7] == '.' {
		s = s[:4] + s[5:7] + s[8:]
	}
	if len(s) != 8 || !digits(s) {
		return DateTime{}, fmt.Errorf("dicom: invalid DA value")
	}
	t, err := time.Parse("20060102", s)
	if err != nil {
		return DateTime{}, fmt.Errorf("dicom: invalid DA value")
	}
	return DateTime{Time: t, Precision: PrecisionDay}, nil
}

// ParseTM parses a TM value (HH, HHMM, HHMMSS, HHMMSS.FFFFFF; the
// ACR-NEMA form HH:MM:SS is accepted too). The date part of Time is
// 0000-01-01.
func ParseTM(s string) (DateTime, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, ":") {
		s = strings.ReplaceAll(s, ":", "")
	}
	dt, rest, err := parseClock(s)
	if err != nil || rest != "" {
		return DateTime{}, fmt.Errorf("dicom: invalid TM value")
	}
	return dt, nil
}

func parseClock(s string) (DateTime, string, error) {
	var hh, mm, ss, ns int
	p := PrecisionHour
	frac := 0
	if len(s) < 2 || !digits(s[:2]) {
		return DateTime{}, s, fmt.Errorf("bad hour")
	}
	hh = atoi(s[:2])
	s = s[2:]
	if len(s) >= 2 && digits(s[:2]) {
		mm = atoi(s[:2])
		s = s[2:]
		p = PrecisionMinute
		if len(s) >= 2 && digits(s[:2]) {
			ss = atoi(s[:2])
			s = s[2:]
			p = PrecisionSecond
			if len(s) > 0 && s[0] == '.' {
				j := 1
				for j < len(s) && j <= 6 && s[j] >= '0' && s[j] <= '9' {
					j++
				}
				frac = j - 1
				if frac == 0 {
					return DateTime{}, s, fmt.Errorf("bad fraction")
				}
				f := s[1:j] + strings.Repeat("0", 9-frac)
				ns = atoi(f)
				s = s[j:]
				p = PrecisionFraction
			}
		}
	}
	if hh > 23 || mm > 59 || ss > 60 {
		return DateTime{}, s, fmt.Errorf("out of range")
	}
	if ss == 60 {
		// A leap second: time.Time cannot hold it; keep it in the same
		// minute rather than rolling over into the next one.
		ss, ns = 59, 999999999
	}
	return DateTime{Time: time.Date(0, 1, 1, hh, mm, ss, ns, time.UTC), Precision: p, FracDigits: frac}, s, nil
}

// ParseDT parses a DT value: YYYY[MM[DD[HH[MM[SS[.F{1-6}]]]]]][&ZZXX].
// Without an offset the time is taken in loc (UTC when nil).
func ParseDT(s string, loc *time.Location) (DateTime, error) {
	s = strings.TrimSpace(s)
	if loc == nil {
		loc = time.UTC
	}
	bad := fmt.Errorf("dicom: invalid DT value")
	var off string
	if i := strings.IndexAny(s, "+-"); i >= 0 {
		s, off = s[:i], s[i:]
	}
	if len(s) < 4 || !digits(s[:4]) {
		return DateTime{}, bad
	}
	year, month, day := atoi(s[:4]), 1, 1
	p := PrecisionYear
	s = s[4:]
	if len(s) >= 2 && digits(s[:2]) {
		month, s, p = atoi(s[:2]), s[2:], PrecisionMonth
		if len(s) >= 2 && digits(s[:2]) {
			day, s, p = atoi(s[:2]), s[2:], PrecisionDay
		}
	}
	var clock DateTime
	if s != "" {
		if p != PrecisionDay {
			return DateTime{}, bad
		}
		var err error
		var rest string
		clock, rest, err = parseClock(s)
		if err != nil || rest != "" {
			return DateTime{}, bad
		}
		p = clock.Precision
	}
	if month < 1 || month > 12 || day < 1 || day > 31 {
		return DateTime{}, bad
	}
	hasOff := false
	if off != "" {
		if len(off) != 5 || !digits(off[1:]) {
			return DateTime{}, bad
		}
		secs := (atoi(off[1:3])*60 + atoi(off[3:5])) * 60
		if off[0] == '-' {
			secs = -secs
		}
		loc = time.FixedZone(off, secs)
		hasOff = true
	}
	c := clock.Time
	t := time.Date(year, time.Month(month), day, c.Hour(), c.Minute(), c.Second(), c.Nanosecond(), loc)
	if t.Day() != day {
		return DateTime{}, bad
	}
	return DateTime{Time: t, Precision: p, FracDigits: clock.FracDigits, HasOffset: hasOff}, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) > 0
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// PersonName is a PN value split into its component groups (alphabetic,
// ideographic, phonetic), each split into family, given, middle, prefix
// and suffix components.
type PersonName struct {
	Alphabetic, Ideographic, Phonetic NameComponents
}

// NameComponents are the five components of one PN component group.
type NameComponents struct {
	Family, Given, Middle, Prefix, Suffix string
}

// ParsePN splits one decoded PN value.
func ParsePN(s string) PersonName {
	groups := strings.SplitN(s, "=", 3)
	var pn PersonName
	for i, g := range groups {
		c := strings.SplitN(g, "^", 5)
		for len(c) < 5 {
			c = append(c, "")
		}
		nc := NameComponents{
			Family: strings.TrimSpace(c[0]), Given: strings.TrimSpace(c[1]), Middle: strings.TrimSpace(c[2]),
			Prefix: strings.TrimSpace(c[3]), Suffix: strings.TrimSpace(c[4]),
		}
		switch i {
		case 0:
			pn.Alphabetic = nc
		case 1:
			pn.Ideographic = nc
		case 2:
			pn.Phonetic = nc
		}
	}
	return pn
}

// String formats the group as family^given^middle^prefix^suffix without
// trailing empty components, the normal form of a PN component group.
func (c NameComponents) String() string {
	parts := []string{c.Family, c.Given, c.Middle, c.Prefix, c.Suffix}
	n := len(parts)
	for n > 0 && parts[n-1] == "" {
		n--
	}
	return strings.Join(parts[:n], "^")
}

// String formats the name in normal form: trailing empty components and
// groups removed, so "A^B" and "A^B^^" compare equal.
func (p PersonName) String() string {
	g := []string{p.Alphabetic.String(), p.Ideographic.String(), p.Phonetic.String()}
	n := len(g)
	for n > 0 && g[n-1] == "" {
		n--
	}
	return strings.Join(g[:n], "=")
}
