package deid

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// This file binds clinical tables to the site key, as mark.go binds DICOM
// objects. 'mosaic deid clinical' adds to every row it writes a column
// ClinicalMarkColumn holding
//
//	MOSAIC DEID <POLICY> D:<dates> K:<key fingerprint> S:<seal>
//
// with the date treatment and fingerprint of mark.go and a seal that is a
// keyed hash of the date treatment and of every other column of the row,
// name and value (the pseudonym and the treated dates among them). Only
// the holder of the key can make it, so a table of real dates keyed by
// IDs that merely look like pseudonyms cannot pass as treated, and no
// value of a sealed row can be changed without the seal failing.
//
// A row whose seal verifies keeps its pseudonym (with this policy's
// prefix); its dates are kept when the mark says they were treated as
// this policy treats them, and otherwise get this policy's treatment on
// top, with the shift the images of that pseudonym get at a node. Every
// other row is original data: its ID is pseudonymised and its dates
// treated, even when the ID looks like a pseudonym; such rows are counted
// (Row.Unsealed) so that the data holder sees why they do not join. A
// table carrying marks of another site key is refused.

// ClinicalMarkColumn is the column of a clinical table that holds the
// mark 'mosaic deid clinical' gives each row.
const ClinicalMarkColumn = "mosaic_deid"

// ErrOtherSiteKey is wrapped by the error about a clinical table that
// Mosaic de-identified with another site key.
var ErrOtherSiteKey = errors.New("de-identified with another site key")

// MarkColumn returns the index of ClinicalMarkColumn in a header row, or
// -1.
func MarkColumn(header []string) int {
	for i, h := range header {
		if columnName(h) == ClinicalMarkColumn {
			return i
		}
	}
	return -1
}

func columnName(h string) string {
	return strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
}

// Row is the treatment of one row of a clinical table (ClinicalRow).
type Row struct {
	e          *Engine
	id, issuer string
	// Own is set for a row 'mosaic deid clinical' wrote with this key
	// whose seal verifies.
	Own bool
	// Unsealed is set for a row taken as original data although its ID
	// looks like a pseudonym or it carries a mark of this key: its seal
	// is missing or does not match. It is pseudonymised again and will
	// not join images de-identified before.
	Unsealed  bool
	keepDates bool
}

// ClinicalRow says how the row rec of a table with this header is
// treated: markCol is MarkColumn(header), id and issuer the row's patient
// ID and issuer. A row marked with another site key is an error wrapping
// ErrOtherSiteKey; the message names no value.
func (e *Engine) ClinicalRow(header, rec []string, markCol int, id, issuer string) (Row, error) {
	id, issuer = strings.TrimSpace(id), strings.TrimSpace(issuer)
	r := Row{e: e, id: id, issuer: issuer}
	mark := ""
	if markCol >= 0 && markCol < len(rec) {
		mark = strings.TrimSpace(rec[markCol])
	}
	looks := issuer == "" && e.isPseudonym(id)
	if mark == "" {
		r.Unsealed = looks
		return r, nil
	}
	var fp, seal, dates string
	for _, f := range strings.Fields(mark) {
		switch {
		case strings.HasPrefix(f, "K:"):
			fp = f[2:]
		case strings.HasPrefix(f, "S:"):
			seal = f[2:]
		case strings.HasPrefix(f, "D:"):
			dates = f[2:]
		}
	}
	if fp != "" && fp != e.fp && strings.HasPrefix(mark, methodPrefix) {
		return r, fmt.Errorf("%w: this clinical table was de-identified by Mosaic with another site key; "+
			"importing it would give its patients second pseudonyms that join nothing; "+
			"use the site key that de-identified it, or the original table", ErrOtherSiteKey)
	}
	if !strings.HasPrefix(mark, methodPrefix) || fp == "" || dates == "" || issuer != "" || len(id) < sealLen+1 ||
		seal != e.rowSeal(header, rec, markCol, dates) {
		// A mark of this key that does not verify, or a pseudonym-like
		// ID: counted. Anything else in the column is no mark at all.
		r.Unsealed = looks || strings.HasPrefix(mark, methodPrefix)
		return r, nil
	}
	r.Own = true
	r.keepDates = dates == e.dateMark()
	return r, nil
}

// Pseudonym returns the row's patient pseudonym: the row's own with this
// policy's prefix for a sealed row, else PatientPseudonym.
func (r Row) Pseudonym() string {
	if r.Own {
		return r.e.reprefix(r.id)
	}
	return r.e.PatientPseudonym(r.id, r.issuer)
}

// ChangeDate applies the policy's date treatment to a date of the row
// (see Engine.ChangeDate). A sealed row's dates are kept when they had
// this treatment already; else they get it on top, with the shift the
// images of that pseudonym get (engine.go, own input).
func (r Row) ChangeDate(date string) (string, error) {
	if !r.Own {
		return r.e.ChangeDate(r.id, r.issuer, date)
	}
	if r.keepDates {
		// Checked as a date, returned as it is.
		date = strings.TrimSpace(date)
		if date == "" {
			return "", nil
		}
		if _, err := r.e.ChangeDate(r.id, "", date); err != nil {
			return "", err
		}
		return date, nil
	}
	return r.e.ChangeDate(r.id, "", date)
}

// rowSeal is the keyed hash of a row's date treatment and of each of its
// columns but the mark, name and value, trimmed and in the order of the
// names (so that reordering columns keeps it).
func (e *Engine) rowSeal(header, rec []string, markCol int, dates string) string {
	pairs := make([]string, 0, len(header))
	for i, h := range header {
		if i == markCol {
			continue
		}
		v := ""
		if i < len(rec) {
			v = strings.TrimSpace(rec[i])
		}
		pairs = append(pairs, columnName(h)+"\x1f"+v)
	}
	slices.Sort(pairs)
	return e.h.pseudonym("", "clinical-row-seal", append([]string{dates}, pairs...)...)
}

// rowMark is the mark of a row written with this policy and key; header
// and rec hold the row's other columns.
func (e *Engine) rowMark(header, rec []string) string {
	dates := e.dateMark()
	return methodPrefix + strings.Join(strings.Fields(strings.ToUpper(e.p.Name)), "-") +
		" D:" + dates + " K:" + e.fp + " S:" + e.rowSeal(header, rec, -1, dates)
}
