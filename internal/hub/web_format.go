package hub

import (
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Formatting for the templates: numbers, dates, durations, tiers,
// modalities and body parts in words.

// uiWait says a wait in seconds in words.
func uiWait(s int) string {
	switch {
	case s <= 1:
		return "1 second"
	case s < 120:
		return strconv.Itoa(s) + " seconds"
	default:
		return strconv.Itoa((s+59)/60) + " minutes"
	}
}

func uiNum(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func uiTime(v any) (time.Time, bool) {
	switch t := v.(type) {
	case time.Time:
		return t, !t.IsZero()
	case *time.Time:
		if t != nil && !t.IsZero() {
			return *t, true
		}
	}
	return time.Time{}, false
}

func uiDate(v any) string {
	if t, ok := uiTime(v); ok {
		return t.UTC().Format("2 Jan 2006")
	}
	return "—"
}

func uiDateTime(v any) string {
	if t, ok := uiTime(v); ok {
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	return "never"
}

func uiAgo(v any) string {
	t, ok := uiTime(v)
	if !ok {
		return "never"
	}
	d := time.Since(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + " s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + " min ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + " h ago"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + " days ago"
}

func uiTierName(n int) string {
	switch n {
	case 1:
		return "Tier 1: catalogue only"
	case 2:
		return "Tier 2: searchable"
	case 3:
		return "Tier 3: searchable, full data model"
	}
	return "Tier " + strconv.Itoa(n)
}

var uiModalityNames = map[string]string{
	"CT": "CT", "MR": "MR", "PT": "PET", "NM": "SPECT / NM", "US": "Ultrasound", "MG": "Mammography",
	"CR": "Radiography (CR)", "DX": "Radiography (DX)", "OT": "Other", "SC": "Secondary capture",
}

func uiModalityName(m string) string {
	if n, ok := uiModalityNames[strings.ToUpper(m)]; ok {
		return n
	}
	return m
}

// uiBodyPartName writes a DICOM Body Part Examined term (WHOLEBODY,
// CHEST) in words.
func uiBodyPartName(p string) string {
	switch strings.ToUpper(p) {
	case "WHOLEBODY":
		return "Whole body"
	case "HEADNECK":
		return "Head and neck"
	case "CHESTABDPELVIS":
		return "Chest, abdomen, pelvis"
	case "ABDOMENPELVIS":
		return "Abdomen and pelvis"
	}
	lower := []rune(strings.ToLower(strings.ReplaceAll(p, "_", " ")))
	if len(lower) == 0 {
		return p
	}
	lower[0] = unicode.ToUpper(lower[0])
	return string(lower)
}
