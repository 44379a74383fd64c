package fl

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// ReadScores reads a validation program's scores.csv: a header naming
// the columns score and label (in any order; other columns are
// ignored), then one row per scored row, the label 0 or 1. It refuses
// more than maxRows rows (0: no limit) and names bad lines by number
// only, never by value.
func ReadScores(r io.Reader, maxRows int) (scores, labels []float64, err error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		return nil, nil, errors.New("fl: scores.csv: no header line")
	}
	si, li := -1, -1
	for i, h := range head {
		switch strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")) {
		case "score":
			si = i
		case "label":
			li = i
		}
	}
	if si < 0 || li < 0 {
		return nil, nil, errors.New("fl: scores.csv: the header needs columns score and label")
	}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("fl: scores.csv line %d: not CSV of the header's width", line)
		}
		if maxRows > 0 && len(scores) >= maxRows {
			return nil, nil, fmt.Errorf("fl: scores.csv: more than %d rows", maxRows)
		}
		s, err := strconv.ParseFloat(strings.TrimSpace(rec[si]), 64)
		if err != nil || math.IsNaN(s) || math.IsInf(s, 0) {
			return nil, nil, fmt.Errorf("fl: scores.csv line %d: the score is not a finite number", line)
		}
		y, err := strconv.ParseFloat(strings.TrimSpace(rec[li]), 64)
		if err != nil || (y != 0 && y != 1) {
			return nil, nil, fmt.Errorf("fl: scores.csv line %d: the label is not 0 or 1", line)
		}
		scores, labels = append(scores, s), append(labels, y)
	}
	return scores, labels, nil
}
