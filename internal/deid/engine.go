package deid

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
)

// ErrRejected is wrapped by every *Rejection.
var ErrRejected = errors.New("rejected")

// Rejection reports an object the engine refuses to let through: it cannot
// be made safe (text burned into the pixels, a value that survived), or it
// lacks what an output needs. Nothing of a rejected object is written.
type Rejection struct {
	// Code is a short stable word for summaries: burned-in-annotation,
	// recognizable-features, pixel-text-risk, leak, missing-uid, and for
	// input Mosaic already de-identified but that cannot be taken as it
	// is: other-site-key, unbound-deid, altered-deid (see mark.go).
	Code string
	// Reason explains it for a person; it never holds patient data.
	Reason string
}

func (r *Rejection) Error() string { return "rejected: " + r.Reason }
func (r *Rejection) Unwrap() error { return ErrRejected }

func reject(code, format string, a ...any) *Rejection {
	return &Rejection{Code: code, Reason: fmt.Sprintf(format, a...)}
}

// Counts says how many attributes each action touched in one object.
type Counts struct {
	Removed        int `json:"removed"`
	Emptied        int `json:"emptied"`
	Dummied        int `json:"dummied"`
	Cleaned        int `json:"cleaned"`
	UIDs           int `json:"uids_replaced"`
	Dates          int `json:"dates_changed"`
	Pseudonyms     int `json:"pseudonyms"`
	PrivateRemoved int `json:"private_removed"`
	PrivateKept    int `json:"private_kept"`
}

// Result describes one de-identified object by its new identity.
type Result struct {
	PatientPseudonym string
	StudyUID         string
	SeriesUID        string
	SOPInstanceUID   string
	SOPClassUID      string
	// UIDsKept is set when the input was Mosaic's own output and kept its
	// UIDs: its study is named by the same UID before and after.
	UIDsKept bool
	Counts   Counts
	// File is the de-identified header as written by Rewrite (pixel data
	// and what follows it not held), or the object given to Apply.
	File *dicom.File
	// PixelOffset and PixelLength locate native pixel data in Rewrite's
	// output; -1 when there is none or it is encapsulated.
	PixelOffset, PixelLength int64
}

// Engine de-identifies DICOM objects under one policy and site key. It is
// safe for concurrent use.
type Engine struct {
	p  Policy
	h  *hasher
	fp string // fingerprint of the site key, written in the method text
}

// NewEngine returns an engine for the policy and key.
func NewEngine(p Policy, k Key) (*Engine, error) {
	if err := p.compile(); err != nil {
		return nil, err
	}
	h := newHasher(k)
	return &Engine{p: p, h: h, fp: h.pseudonym("", "site-key-fingerprint")[:fingerprintLen]}, nil
}

// Policy returns the engine's policy.
func (e *Engine) Policy() Policy { return e.p }

// Rewrite de-identifies the DICOM stream src into dst, streaming the pixel
// data. A rejection decided from the header (the usual case) writes
// nothing; one decided from elements after the pixel data, or a read
// error in the pixel data, comes after part of the output was written. So
// the caller writes to a temporary file and keeps it only on success.
func (e *Engine) Rewrite(dst io.Writer, src io.Reader, opts dicom.ReadOptions) (Result, error) {
	res := Result{PixelOffset: -1, PixelLength: -1}
	var run *job
	err := dicom.Rewrite(dst, src, dicom.RewriteOptions{
		Read: opts,
		Edit: func(f *dicom.File) error {
			var err error
			run, err = e.start(f)
			if err != nil {
				return err
			}
			if err := run.finish(f, &res); err != nil {
				return err
			}
			res.File, res.PixelOffset, res.PixelLength = f, -1, -1
			return nil
		},
		PixelData: func(off, n int64) { res.PixelOffset, res.PixelLength = off, n },
		EditTrailer: func(ds *dicom.Dataset) error {
			if run == nil {
				return nil
			}
			run.apply(ds)
			res.Counts = run.counts
			return run.leakCheck(ds)
		},
	})
	return res, err
}

// Apply de-identifies f in place (its pixel data may be streamed).
func (e *Engine) Apply(f *dicom.File) (Result, error) {
	res := Result{PixelOffset: -1, PixelLength: -1}
	run, err := e.start(f)
	if err != nil {
		return res, err
	}
	err = run.finish(f, &res)
	res.File, res.PixelOffset, res.PixelLength = f, -1, -1
	return res, err
}

// job is the state of one object being de-identified.
type job struct {
	e        *Engine
	sopClass string
	enhanced bool // an enhanced multi-frame object
	// content counts the Content Sequences being descended: inside a
	// structured report's content tree, values that would be removed get
	// dummies instead, keeping the tree valid (action D on the sequence).
	content  int
	patient  string // normalised patient identity for keys
	shift    int    // date shift in days
	idPseudo string
	counts   Counts
	ids      []needle // identifying values of the input
	// own is set for input Mosaic already de-identified with this site
	// key: its pseudonyms stay (with this policy's prefix), and so do its
	// UIDs when keepUIDs is set and its dates when noShift is set (they
	// were shifted with this key by the shift this policy gives).
	own, keepUIDs, noShift bool
	// scrub and scrubState clean kept descriptions (Clean Descriptors).
	scrub      *scrubber
	scrubState scrubState
}

// start checks that the object may pass and collects what the job needs.
func (e *Engine) start(f *dicom.File) (*job, error) {
	ds := &f.Dataset
	normaliseUN(ds)
	j := &job{e: e, sopClass: ds.UID(dicom.TagSOPClassUID), enhanced: ds.Has(tagSharedFunctionalGroupsSequence)}
	if err := e.checkPixelRisk(ds, j.sopClass); err != nil {
		return nil, err
	}
	if ds.UID(dicom.TagSOPInstanceUID) == "" {
		return nil, reject("missing-uid", "no SOP Instance UID")
	}
	own, dates, err := e.checkMark(ds)
	if err != nil {
		return nil, err
	}
	pid, _ := ds.String(tagPatientID)
	issuer, _ := ds.String(tagIssuerOfPatientID)
	j.patient = patientKey(ds, pid, issuer)
	if own {
		// Already this site's pseudonym: kept, with this policy's prefix.
		j.own = true
		j.idPseudo = e.reprefix(pid)
		j.keepUIDs = !hasMethodCode(ds, optionCodes[RetainUIDs].value)
		// Dates are left as they are only when they were shifted as
		// this policy shifts them: same key (checked), same greatest
		// shift. Any other treatment, or an older mark that does not say
		// which, gets this policy's treatment on top (mark.go).
		j.noShift = e.p.Dates == DatesShift && dates == e.dateMark()
	} else {
		j.idPseudo = e.h.pseudonym(e.p.PatientIDPrefix, "patient-id", j.patient)
	}
	if e.p.Dates == DatesShift {
		j.shift = e.h.shiftDays(j.patient, e.p.MaxShiftDays)
	}
	if e.p.opts[CleanDescriptors] {
		j.scrub = &scrubber{}
	}
	j.ids = e.collect(ds, j.own, j.scrub)
	return j, nil
}

// finish applies the policy, adds the conformance attributes and checks
// the result for leaks.
func (j *job) finish(f *dicom.File, res *Result) error {
	ds := &f.Dataset
	j.apply(ds)
	if !ds.Has(tagPatientID) {
		// The pseudonym names the patient even when the input had no ID,
		// so that outputs and results agree.
		if err := ds.SetStrings(tagPatientID, dicom.LO, j.idPseudo); err != nil {
			return err
		}
	}
	if err := j.conformance(ds); err != nil {
		return err
	}
	if err := j.leakCheck(ds); err != nil {
		return err
	}
	*res = Result{
		PatientPseudonym: j.idPseudo,
		StudyUID:         ds.UID(tagStudyInstanceUID),
		SeriesUID:        ds.UID(tagSeriesInstanceUID),
		SOPInstanceUID:   ds.UID(dicom.TagSOPInstanceUID),
		SOPClassUID:      j.sopClass,
		UIDsKept:         j.own && j.keepUIDs,
		Counts:           j.counts,
	}
	switch {
	case res.SOPInstanceUID == "":
		return reject("missing-uid", "no SOP Instance UID after de-identification")
	case res.StudyUID == "":
		// Without study and series UIDs an object cannot be filed or
		// found again; every storage SOP class requires both.
		return reject("missing-uid", "no Study Instance UID")
	case res.SeriesUID == "":
		return reject("missing-uid", "no Series Instance UID")
	}
	return nil
}

// Tags the engine handles by name.
const (
	tagPatientName                        dicom.Tag = 0x00100010
	tagPatientID                          dicom.Tag = 0x00100020
	tagIssuerOfPatientID                  dicom.Tag = 0x00100021
	tagPatientBirthDate                   dicom.Tag = 0x00100030
	tagStudyInstanceUID                   dicom.Tag = 0x0020000D
	tagSeriesInstanceUID                  dicom.Tag = 0x0020000E
	tagInstitutionName                    dicom.Tag = 0x00080080
	tagModality                           dicom.Tag = 0x00080060
	tagBurnedInAnnotation                 dicom.Tag = 0x00280301
	tagRecognizableVisualFeatures         dicom.Tag = 0x00280302
	tagLongitudinalTemporalInfoModified   dicom.Tag = 0x00280303
	tagPatientIdentityRemoved             dicom.Tag = 0x00120062
	tagDeidentificationMethod             dicom.Tag = 0x00120063
	tagDeidentificationMethodCodeSequence dicom.Tag = 0x00120064
	tagCodeValue                          dicom.Tag = 0x00080100
	tagCodingSchemeDesignator             dicom.Tag = 0x00080102
	tagCodeMeaning                        dicom.Tag = 0x00080104
	tagContentSequence                    dicom.Tag = 0x0040A730
	tagSharedFunctionalGroupsSequence     dicom.Tag = 0x52009229
)

// patientKey is the normalised identity the pseudonym and date shift are
// derived from: the patient ID and its issuer, or, without an ID, the
// normalised name and birth date.
func patientKey(ds *dicom.Dataset, pid, issuer string) string {
	pid, issuer = strings.TrimSpace(pid), strings.TrimSpace(issuer)
	if pid != "" {
		return "id\x00" + pid + "\x00" + issuer
	}
	name, _ := ds.String(tagPatientName)
	birth, _ := ds.String(tagPatientBirthDate)
	return "name\x00" + normaliseName(name) + "\x00" + strings.TrimSpace(birth)
}

// normaliseName puts a person name in one form: components trimmed,
// trailing empty components and groups dropped, upper case, so that
// "Doe^Jane", "DOE^JANE^^" and " Doe ^Jane" are the same person.
func normaliseName(s string) string {
	return strings.ToUpper(dicom.ParsePN(s).String())
}

// apply walks ds, applying the policy to every element at every depth.
func (j *job) apply(ds *dicom.Dataset) {
	p := &j.e.p
	// Private creators are resolved before elements are removed.
	creators := privateCreators(ds)
	keepCreator := map[dicom.Tag]bool{}
	var drop []dicom.Tag
	for i := 0; i < len(ds.Elements); i++ {
		el := &ds.Elements[i]
		t := el.Tag
		if t.IsGroupLength() && t.Group() != 0x0002 {
			drop = append(drop, t)
			continue
		}
		if t.Group()&1 == 1 {
			if t.IsPrivateCreator() || t.Element() < 0x0010 {
				continue // decided once the data elements are known
			}
			if creatorTag, ok := t.PrivateCreatorTag(); ok && p.opts[RetainSafePrivate] && j.e.retainPrivate(creators[creatorTag], t) {
				keepCreator[creatorTag] = true
				j.counts.PrivateKept++
				continue
			}
			drop = append(drop, t)
			j.counts.PrivateRemoved++
			continue
		}
		switch t {
		case tagPatientID:
			pid := strings.TrimSpace(ds.Text(el))
			v := j.idPseudo
			if ds.Parent() != nil && pid != "" && j.own && j.e.isPseudonym(pid) {
				// Already a pseudonym of this site. The seal covers only
				// the top level, so a nested ID is kept only when it has
				// a pseudonym's form; any other is mapped as in raw input.
				v = pid
			} else if ds.Parent() != nil && pid != "" {
				// A patient ID inside an item names some patient: the same
				// keyed mapping keeps it consistent.
				v = j.e.h.pseudonym(p.PatientIDPrefix, "patient-id", "id\x00"+pid+"\x00")
			}
			ds.SetStrings(t, dicom.LO, v)
			j.counts.Pseudonyms++
			continue
		case tagPatientName:
			if ds.Parent() == nil {
				name := normaliseName(ds.Text(el))
				v := ""
				switch {
				case j.own:
					v = j.e.reprefix(strings.TrimSpace(ds.Text(el)))
				case name != "":
					v = j.e.h.pseudonym(p.PatientIDPrefix, "patient-name", name)
				}
				ds.SetStrings(t, dicom.PN, v)
				j.counts.Pseudonyms++
				continue
			}
		}
		a, _, row := p.action(t)
		if row == nil && a == 0 {
			a = notInTable(el)
		}
		if a.combined() {
			a = a.byType(attributeType(j.sopClass, j.enhanced, t))
		}
		if a == Remove && j.content > 0 && el.Items == nil && el.VR != dicom.UN && el.VR != dicom.SQ {
			a = Dummy
		}
		if a == Keep && j.scrub != nil && j.cleansKept(row, el) {
			if j.scrubElement(ds, el) {
				drop = append(drop, t)
			}
			continue
		}
		tree := dummyTrees[t]
		if tree {
			j.content++
		}
		if j.act(ds, i, a) {
			drop = append(drop, t)
		}
		if tree {
			j.content--
		}
	}
	// Unused private creators and reserved private elements go too.
	for i := range ds.Elements {
		t := ds.Elements[i].Tag
		if t.Group()&1 == 1 && (t.IsPrivateCreator() || t.Element() < 0x0010) && !keepCreator[t] {
			drop = append(drop, t)
			j.counts.PrivateRemoved++
		}
	}
	for _, t := range drop {
		ds.Remove(t)
	}
}

// extraRules treat attributes Table E.1-1 does not list but that identify
// as plainly as those it does.
var extraRules = map[dicom.Tag]Action{
	0x00100033: Remove, // Patient's Birth Date in Alternative Calendar
	0x00100034: Remove, // Patient's Death Date in Alternative Calendar
	0x00100035: Remove, // Patient's Alternative Calendar
}

// dummyTrees are sequences whose structure an IOD requires (a report's
// content tree, its verifying observers, waveform annotations): inside
// them, values the rules would remove are replaced by dummies instead, so
// the tree stays valid and carries no identity. Sequences that identify
// by themselves (person identification codes) are emptied instead.
var dummyTrees = map[dicom.Tag]bool{
	0x0040A730: true, // Content Sequence
	0x0040A073: true, // Verifying Observer Sequence
	0x0040B020: true, // Waveform Annotation Sequence
}

// normaliseUN gives elements read as UN the VR the dictionary gives their
// tag, so that the rules for names, UIDs and dates apply to them too, and
// reads UN sequences of defined length into items.
func normaliseUN(ds *dicom.Dataset) {
	for i := range ds.Elements {
		el := &ds.Elements[i]
		for _, it := range el.Items {
			normaliseUN(&it.Dataset)
		}
		if el.VR != dicom.UN || el.Items != nil || el.Tag.Group()&1 == 1 {
			continue
		}
		de, ok := dicom.Lookup(el.Tag)
		if ok && de.VR == dicom.SQ {
			// A sequence the writer sent as UN: read its items so the
			// rules apply inside; if they do not parse it stays unknown
			// data, and goes.
			if ds.ExpandUN(el) == nil {
				normaliseUN(&el.Items[0].Dataset)
				for _, it := range el.Items[1:] {
					normaliseUN(&it.Dataset)
				}
			}
			continue
		}
		if ok && de.VR != 0 && de.VR != dicom.UN {
			el.VR = de.VR
			ds.MarkChanged(el.Tag)
		}
	}
}

// notInTable is the action for a public attribute Table E.1-1 does not
// list: kept unless it may hold free text or names.
func notInTable(el *dicom.Element) Action {
	if a, ok := extraRules[el.Tag]; ok {
		return a
	}
	if el.VR == dicom.SQ || el.Items != nil {
		return Clean // descend and apply the rules inside
	}
	if _, known := dicom.Lookup(el.Tag); !known {
		// An attribute this build's dictionary does not know (newer than
		// it, or invented) may hold anything.
		return Remove
	}
	switch el.VR {
	case dicom.ST, dicom.LT, dicom.UT, dicom.UC, dicom.PN, dicom.UN:
		return Remove
	}
	return Keep
}

// act applies action a to the element at index i of ds. It returns true
// when the element is to be removed.
func (j *job) act(ds *dicom.Dataset, i int, a Action) bool {
	el := &ds.Elements[i]
	isSeq := el.VR == dicom.SQ || el.Items != nil
	switch a {
	case Keep:
		if isSeq {
			j.applyItems(el)
		}
		return false
	case Remove:
		j.counts.Removed++
		return true
	case Zero:
		j.counts.Emptied++
		if isSeq {
			ds.SetSequence(el.Tag)
			return false
		}
		ds.Set(dicom.Element{Tag: el.Tag, VR: el.VR})
		return false
	case Dummy:
		if isSeq && dummyTrees[el.Tag] {
			// The tree keeps its structure; every value in it is treated
			// by the rules, and what they would remove gets a dummy.
			j.applyItems(el)
			j.counts.Dummied++
			return false
		}
		if isSeq {
			// No meaningful dummy item exists: an empty sequence.
			j.counts.Emptied++
			ds.SetSequence(el.Tag)
			return false
		}
		j.counts.Dummied++
		j.dummy(ds, el)
		return false
	case UID:
		if isSeq {
			j.applyItems(el)
			return false
		}
		if el.VR != dicom.UI {
			j.counts.Removed++
			return true
		}
		j.replaceUIDs(ds, el)
		return false
	case Clean:
		return j.clean(ds, el, isSeq)
	}
	j.counts.Removed++
	return true
}

func (j *job) applyItems(el *dicom.Element) {
	for _, it := range el.Items {
		j.apply(&it.Dataset)
	}
}

func (j *job) replaceUIDs(ds *dicom.Dataset, el *dicom.Element) {
	if j.keepUIDs {
		return // this site's keyed UIDs already
	}
	vals := ds.Strings(el)
	for k, v := range vals {
		if v != "" {
			vals[k] = j.e.h.uid(v)
		}
	}
	ds.SetStrings(el.Tag, dicom.UI, vals...)
	j.counts.UIDs++
}

// clean replaces values with ones of similar meaning and no identity:
// dates per the date policy, items by applying the rules inside them, the
// institution by the site ID; free text, which no rule can clean, goes.
func (j *job) clean(ds *dicom.Dataset, el *dicom.Element, isSeq bool) bool {
	p := &j.e.p
	if isSeq {
		j.applyItems(el)
		j.counts.Cleaned++
		return false
	}
	switch el.VR {
	case dicom.DA, dicom.DT, dicom.TM:
		return j.cleanDate(ds, el)
	}
	if el.Tag == tagInstitutionName && p.SiteID != "" {
		ds.SetStrings(el.Tag, el.VR, p.SiteID)
		j.counts.Cleaned++
		return false
	}
	if j.scrub != nil && scrubbable(el.VR) && isDescriptor(el.Tag) && !narrative[el.Tag] {
		// Clean Descriptors: a description keeps its meaning without the
		// object's identifying values.
		return j.scrubElement(ds, el)
	}
	if attributeType(j.sopClass, j.enhanced, el.Tag) == 2 {
		ds.Set(dicom.Element{Tag: el.Tag, VR: el.VR})
		j.counts.Emptied++
		return false
	}
	j.counts.Removed++
	return true
}

// cleanDate applies the date policy to a DA, DT or TM value.
func (j *job) cleanDate(ds *dicom.Dataset, el *dicom.Element) bool {
	p := &j.e.p
	if el.VR == dicom.TM {
		return false // a time of day alone identifies no one
	}
	if j.noShift && p.Dates == DatesShift {
		return false // shifted already, with this site key
	}
	vals := ds.Strings(el)
	for k, v := range vals {
		if v == "" {
			continue
		}
		nv, ok := changeDate(v, el.VR, p.Dates, j.shift)
		if !ok {
			// A value that is not a date cannot be shifted: it goes.
			ds.Set(dicom.Element{Tag: el.Tag, VR: el.VR})
			j.counts.Emptied++
			return false
		}
		vals[k] = nv
	}
	ds.SetStrings(el.Tag, el.VR, vals...)
	j.counts.Dates++
	return false
}

// changeDate shifts a DA or DT value by days, or moves it to the first of
// its month, keeping the precision, time and UTC offset of DT values.
func changeDate(v string, vr dicom.VR, mode DateMode, days int) (string, bool) {
	layout, n := "20060102", 8
	if vr == dicom.DT && len(v) < 8 {
		// Year or year-month precision: keep it.
		switch {
		case len(v) >= 6 && allDigits(v[:6]):
			layout, n = "200601", 6
		case len(v) >= 4 && allDigits(v[:4]):
			layout, n = "2006", 4
		default:
			return "", false
		}
	}
	if len(v) < n || !allDigits(v[:n]) {
		return "", false
	}
	d, err := time.Parse(layout, v[:n])
	if err != nil {
		return "", false
	}
	switch mode {
	case DatesMonth:
		d = time.Date(d.Year(), d.Month(), 1, 0, 0, 0, 0, time.UTC)
	case DatesShift:
		d = d.AddDate(0, 0, days)
	}
	return d.Format(layout) + v[n:], true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// dummy replaces the value with a non-empty dummy of the same VR.
func (j *job) dummy(ds *dicom.Dataset, el *dicom.Element) {
	t, vr := el.Tag, el.VR
	switch vr {
	case dicom.DA:
		ds.SetStrings(t, vr, "19000101")
	case dicom.DT:
		ds.SetStrings(t, vr, "19000101000000")
	case dicom.TM:
		ds.SetStrings(t, vr, "000000")
	case dicom.DS, dicom.IS:
		ds.SetStrings(t, vr, "0")
	case dicom.AS:
		ds.SetStrings(t, vr, "000Y")
	case dicom.UI:
		j.replaceUIDs(ds, el)
	case dicom.AE, dicom.CS, dicom.SH, dicom.LO, dicom.PN, dicom.ST, dicom.LT, dicom.UT, dicom.UC:
		ds.SetStrings(t, vr, "ANONYMIZED")
	case dicom.UR:
		ds.SetStrings(t, vr, "urn:anonymized")
	default:
		size := vr.ValueSize()
		if size == 0 {
			size = 2
		}
		ds.SetBytes(t, vr, make([]byte, size))
	}
}

// conformance records what was done (PS3.15 E.1.1, CID 7050).
func (j *job) conformance(ds *dicom.Dataset) error {
	p := &j.e.p
	if err := ds.SetStrings(tagPatientIdentityRemoved, dicom.CS, "YES"); err != nil {
		return err
	}
	if err := ds.SetStrings(tagDeidentificationMethod, dicom.LO, j.e.methodText(ds)); err != nil {
		return err
	}
	items := []*dicom.Item{codeItem("113100", "Basic Application Confidentiality Profile")}
	for _, o := range p.EnabledOptions() {
		items = append(items, codeItem(optionCodes[o].value, optionCodes[o].meaning))
	}
	ds.SetSequence(tagDeidentificationMethodCodeSequence, items...)
	state := "REMOVED"
	switch p.Dates {
	case DatesKeep:
		state = "UNMODIFIED"
	case DatesShift, DatesMonth:
		state = "MODIFIED"
	}
	return ds.SetStrings(tagLongitudinalTemporalInfoModified, dicom.CS, state)
}

func codeItem(value, meaning string) *dicom.Item {
	it := dicom.NewItem()
	it.SetStrings(tagCodeValue, dicom.SH, value)
	it.SetStrings(tagCodingSchemeDesignator, dicom.SH, "DCM")
	it.SetStrings(tagCodeMeaning, dicom.LO, meaning)
	return it
}

// privateCreators maps each private creator slot of ds to its creator
// string.
func privateCreators(ds *dicom.Dataset) map[dicom.Tag]string {
	var m map[dicom.Tag]string
	for i := range ds.Elements {
		el := &ds.Elements[i]
		if el.Tag.IsPrivateCreator() {
			if m == nil {
				m = map[dicom.Tag]string{}
			}
			m[el.Tag] = strings.TrimSpace(strings.TrimRight(string(el.Value), "\x00 "))
		}
	}
	return m
}

// retainPrivate reports whether a rule keeps private element t of the
// named creator.
func (e *Engine) retainPrivate(creator string, t dicom.Tag) bool {
	if creator == "" {
		return false
	}
	for _, r := range e.p.RetainPrivate {
		if !strings.EqualFold(r.Creator, creator) || (r.Group != 0 && r.Group != t.Group()) {
			continue
		}
		for _, b := range r.Elements {
			if byte(t.Element()) == b {
				return true
			}
		}
	}
	return false
}
