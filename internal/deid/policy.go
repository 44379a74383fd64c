package deid

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
)

//go:generate go run ./internal/genprofile -data ../../../shared/dicom-standard -o profile_gen.go

// Option is one option of the Basic Application Level Confidentiality
// Profile (PS3.15 E.3).
type Option int

// The profile options, in the order of the columns of Table E.1-1.
const (
	RetainSafePrivate Option = iota
	RetainUIDs
	RetainDeviceIdentity
	RetainInstitutionIdentity
	RetainPatientCharacteristics
	RetainLongitudinalFullDates
	RetainLongitudinalModifiedDates
	CleanDescriptors
	CleanStructuredContent
	CleanGraphics
	numOptions
)

var optionNames = [numOptions]string{
	"retain-safe-private", "retain-uids", "retain-device-identity", "retain-institution-identity",
	"retain-patient-characteristics", "retain-longitudinal-full-dates", "retain-longitudinal-modified-dates",
	"clean-descriptors", "clean-structured-content", "clean-graphics",
}

// optionCodes are the CID 7050 codes naming each option in the
// De-identification Method Code Sequence.
var optionCodes = [numOptions]struct{ value, meaning string }{
	{"113111", "Retain Safe Private Option"},
	{"113110", "Retain UIDs Option"},
	{"113109", "Retain Device Identity Option"},
	{"113112", "Retain Institution Identity Option"},
	{"113108", "Retain Patient Characteristics Option"},
	{"113106", "Retain Longitudinal Temporal Information Full Dates Option"},
	{"113107", "Retain Longitudinal Temporal Information Modified Dates Option"},
	{"113105", "Clean Descriptors Option"},
	{"113104", "Clean Structured Content Option"},
	{"113103", "Clean Graphics Option"},
}

func (o Option) String() string {
	if o >= 0 && o < numOptions {
		return optionNames[o]
	}
	return fmt.Sprintf("option(%d)", int(o))
}

// ParseOption returns the option named s (as printed by String).
func ParseOption(s string) (Option, bool) {
	for i, n := range optionNames {
		if n == s {
			return Option(i), true
		}
	}
	return 0, false
}

// profileRow is one row of PS3.15 Table E.1-1: the basic profile action
// and, per option, the action that replaces it when the option is on (""
// where the cell is blank).
type profileRow struct {
	tag, mask uint32
	name      string
	basic     string
	edition   string
	opts      [numOptions]string
}

// DateMode says what happens to dates and times the profile would remove.
type DateMode string

// Date modes. Remove follows the basic profile; Shift moves every date of
// a patient by the same keyed offset (Retain Longitudinal Temporal
// Information with Modified Dates); Month moves dates to the first of
// their month, as EUCAIM's pipeline does; Keep retains full dates.
const (
	DatesRemove DateMode = "remove"
	DatesShift  DateMode = "shift"
	DatesMonth  DateMode = "month"
	DatesKeep   DateMode = "keep"
)

// PrivateRule keeps private elements of one creator: the data elements
// (gggg,xxEE) whose block is reserved by Creator, in group Group (0: any
// odd group), with element byte EE among Elements (empty: none).
//
// In a policy file the group is four hex digits and the element bytes two
// hex digits each, as DICOM writes tags: {"creator": "SIEMENS CSA
// HEADER", "group": "0029", "elements": ["08", "10"]}.
type PrivateRule struct {
	Creator  string
	Group    uint16
	Elements []byte
}

type privateRuleJSON struct {
	Creator  string   `json:"creator"`
	Group    string   `json:"group,omitempty"`
	Elements []string `json:"elements"`
}

// MarshalJSON writes the group and element bytes as hex strings.
func (r PrivateRule) MarshalJSON() ([]byte, error) {
	j := privateRuleJSON{Creator: r.Creator, Elements: make([]string, 0, len(r.Elements))}
	if r.Group != 0 {
		j.Group = fmt.Sprintf("%04X", r.Group)
	}
	for _, b := range r.Elements {
		j.Elements = append(j.Elements, fmt.Sprintf("%02X", b))
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads the group ("0029") and element bytes ("10") as hex.
func (r *PrivateRule) UnmarshalJSON(b []byte) error {
	var j privateRuleJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("retain_private: %w (group and elements are hex strings, as in {\"group\": \"0029\", \"elements\": [\"08\", \"10\"]})", err)
	}
	out := PrivateRule{Creator: j.Creator}
	if j.Group != "" {
		g, err := strconv.ParseUint(j.Group, 16, 16)
		if err != nil || len(j.Group) != 4 {
			return fmt.Errorf("retain_private: group %q is not four hex digits", j.Group)
		}
		out.Group = uint16(g)
	}
	for _, e := range j.Elements {
		v, err := strconv.ParseUint(e, 16, 8)
		if err != nil || len(e) != 2 {
			return fmt.Errorf("retain_private: element %q is not two hex digits", e)
		}
		out.Elements = append(out.Elements, byte(v))
	}
	*r = out
	return nil
}

// Policy is a complete de-identification policy. Presets give the usual
// ones; a policy file (JSON, see LoadPolicy) can change any field.
type Policy struct {
	// Version of the policy file format; 1.
	Version int `json:"version"`
	// Name is recorded in De-identification Method.
	Name string `json:"name"`
	// Options of the confidentiality profile that are switched on.
	Options []string `json:"options"`
	// Dates says what happens to dates and times.
	Dates DateMode `json:"dates"`
	// MaxShiftDays bounds the per-patient date shift (Dates "shift"): dates
	// move back by 1 to MaxShiftDays days.
	MaxShiftDays int `json:"max_shift_days"`
	// PatientIDPrefix starts every patient pseudonym.
	PatientIDPrefix string `json:"patient_id_prefix"`
	// SiteID, when set, replaces Institution Name (EUCAIM's provider ID).
	SiteID string `json:"site_id,omitempty"`
	// AllowClasses lists SOP Class UIDs accepted despite a risk of text in
	// the pixels (ultrasound, secondary capture, ...). Objects with Burned
	// In Annotation YES are rejected whatever this says.
	AllowClasses []string `json:"allow_classes,omitempty"`
	// RetainPrivate lists private elements kept when the retain safe
	// private option is on.
	RetainPrivate []PrivateRule `json:"retain_private,omitempty"`
	// Overrides sets the action of single attributes by keyword or
	// "ggggeeee": one of K, X, Z, D, C, U.
	Overrides map[string]string `json:"overrides,omitempty"`

	opts      [numOptions]bool
	overrides map[dicom.Tag]Action
}

// Presets are the named policies.
var Presets = []string{"basic", "eucaim", "longitudinal"}

// Preset returns the named policy.
func Preset(name string) (Policy, error) {
	var p Policy
	switch name {
	case "basic":
		p = Policy{Version: 1, Name: "basic", Dates: DatesRemove, PatientIDPrefix: "MOS-"}
	case "eucaim":
		// The series description is kept: Clean Descriptors scrubs it
		// (and the other descriptions the profile lists) of the object's
		// own names, IDs and dates.
		p = Policy{Version: 1, Name: "eucaim", Dates: DatesMonth, PatientIDPrefix: "EUCAIM-",
			Options: []string{RetainPatientCharacteristics.String(), RetainDeviceIdentity.String(), RetainLongitudinalModifiedDates.String(),
				CleanDescriptors.String()},
			Overrides: map[string]string{
				"PatientBirthDate":  "Z", // the age is kept instead
				"StudyDescription":  "X",
				"SeriesDescription": "K",
				"InstitutionName":   "C", // replaced by the site ID
			}}
	case "longitudinal":
		p = Policy{Version: 1, Name: "longitudinal", Dates: DatesShift, MaxShiftDays: 365, PatientIDPrefix: "MOS-",
			Options: []string{RetainPatientCharacteristics.String(), RetainDeviceIdentity.String(), RetainLongitudinalModifiedDates.String()}}
	default:
		return Policy{}, fmt.Errorf("deid: %w: unknown policy %q (presets: %s)", ErrPolicy, name, strings.Join(Presets, ", "))
	}
	return p, p.compile()
}

// ErrPolicy marks an invalid policy.
var ErrPolicy = errors.New("invalid policy")

// LoadPolicy reads a policy file: JSON with the fields of Policy. A
// "preset" member names the preset it starts from; the other members
// replace that preset's fields.
func LoadPolicy(path string) (Policy, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Policy{}, fmt.Errorf("deid: policy: %w", err)
	}
	var head struct {
		Preset string `json:"preset"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return Policy{}, fmt.Errorf("deid: %w: %s: %v", ErrPolicy, path, err)
	}
	p := Policy{Version: 1, Dates: DatesRemove, PatientIDPrefix: "MOS-"}
	if head.Preset != "" {
		if p, err = Preset(head.Preset); err != nil {
			return Policy{}, err
		}
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	var withPreset struct {
		Preset string `json:"preset"`
		*Policy
	}
	withPreset.Policy = &p
	if err := dec.Decode(&withPreset); err != nil {
		return Policy{}, fmt.Errorf("deid: %w: %s: %v", ErrPolicy, path, err)
	}
	if p.Name == "" {
		p.Name = strings.TrimSuffix(pathBase(path), ".json")
	}
	return p, p.compile()
}

func pathBase(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}

// compile validates the policy and fills its lookup fields.
func (p *Policy) compile() error {
	if p.Version != 1 {
		return fmt.Errorf("deid: %w: version %d (this build reads version 1)", ErrPolicy, p.Version)
	}
	p.opts = [numOptions]bool{}
	for _, s := range p.Options {
		o, ok := ParseOption(s)
		if !ok {
			return fmt.Errorf("deid: %w: unknown option %q (options: %s)", ErrPolicy, s, strings.Join(optionNames[:], ", "))
		}
		p.opts[o] = true
	}
	switch p.Dates {
	case DatesRemove, DatesKeep:
	case DatesShift, DatesMonth:
		p.opts[RetainLongitudinalModifiedDates] = true
	case "":
		p.Dates = DatesRemove
	default:
		return fmt.Errorf("deid: %w: dates %q (want remove, shift, month or keep)", ErrPolicy, p.Dates)
	}
	if p.Dates == DatesKeep {
		p.opts[RetainLongitudinalFullDates] = true
	}
	if p.opts[RetainLongitudinalFullDates] && p.opts[RetainLongitudinalModifiedDates] {
		return fmt.Errorf("deid: %w: retain full dates and retain modified dates exclude each other", ErrPolicy)
	}
	if p.Dates == DatesShift && p.MaxShiftDays <= 0 {
		p.MaxShiftDays = 365
	}
	if len(p.PatientIDPrefix) > 32 {
		return fmt.Errorf("deid: %w: patient ID prefix longer than 32 characters", ErrPolicy)
	}
	p.overrides = map[dicom.Tag]Action{}
	for k, v := range p.Overrides {
		t, ok := parseTagOrKeyword(k)
		if !ok {
			return fmt.Errorf("deid: %w: override of unknown attribute %q", ErrPolicy, k)
		}
		if t == 0x00100010 || t == 0x00100020 {
			return fmt.Errorf("deid: %w: override of %s: the patient's name and ID always become keyed pseudonyms", ErrPolicy, k)
		}
		a, ok := parseAction(v)
		if !ok || a.combined() {
			return fmt.Errorf("deid: %w: override %s: action %q (want K, X, Z, D, C or U)", ErrPolicy, k, v)
		}
		p.overrides[t] = a
	}
	for _, r := range p.RetainPrivate {
		if r.Creator == "" {
			return fmt.Errorf("deid: %w: retained private rule without creator", ErrPolicy)
		}
		if r.Group != 0 && r.Group&1 == 0 {
			return fmt.Errorf("deid: %w: retained private group %04X is not odd", ErrPolicy, r.Group)
		}
	}
	return nil
}

func parseTagOrKeyword(s string) (dicom.Tag, bool) {
	if len(s) == 8 {
		var v uint32
		if _, err := fmt.Sscanf(s, "%08x", &v); err == nil {
			return dicom.Tag(v), true
		}
	}
	if e, ok := dicom.LookupKeyword(s); ok {
		return e.Tag, true
	}
	return 0, false
}

// Enabled reports whether option o is on.
func (p *Policy) Enabled(o Option) bool { return p.opts[o] }

// EnabledOptions lists the options that are on, in table order.
func (p *Policy) EnabledOptions() []Option {
	var out []Option
	for o := Option(0); o < numOptions; o++ {
		if p.opts[o] {
			out = append(out, o)
		}
	}
	return out
}

// lookupRow finds the table row for t, single tags before repeating
// groups.
func lookupRow(t dicom.Tag) (*profileRow, bool) {
	i := sort.Search(len(profileRows), func(i int) bool { return profileRows[i].tag >= uint32(t) })
	if i < len(profileRows) && profileRows[i].tag == uint32(t) && profileRows[i].mask == 0xFFFFFFFF {
		return &profileRows[i], true
	}
	for _, j := range repeatingRows {
		r := &profileRows[j]
		if uint32(t)&r.mask == r.tag {
			return r, true
		}
	}
	return nil, false
}

// repeatingRows indexes the few rows that cover repeating groups.
var repeatingRows = func() []int {
	var out []int
	for i := range profileRows {
		if profileRows[i].mask != 0xFFFFFFFF {
			out = append(out, i)
		}
	}
	return out
}()

// Rule is the effective treatment of one attribute under a policy, as
// `mosaic deid policy show` prints it.
type Rule struct {
	Tag dicom.Tag
	// Mask has a zero nibble for every hex digit of Tag that varies: rows
	// of repeating groups such as overlays (60xx,eeee) cover every group
	// the mask allows.
	Mask    uint32
	Name    string
	Basic   string // the basic profile's code
	Action  Action // the code in force with the policy's options
	Because string // what decided it: "basic profile", an option, or "policy override"
}

// action returns the action for t and what decided it.
func (p *Policy) action(t dicom.Tag) (Action, string, *profileRow) {
	r, ok := lookupRow(t)
	if a, ok2 := p.overrides[t]; ok2 {
		return a, "policy override", r
	}
	if !ok {
		return 0, "", nil
	}
	a, _ := parseAction(r.basic)
	because := "basic profile"
	// Retain options first, then the clean options, so that cleaning wins
	// where both apply.
	for _, o := range []Option{RetainSafePrivate, RetainUIDs, RetainDeviceIdentity, RetainInstitutionIdentity,
		RetainPatientCharacteristics, RetainLongitudinalFullDates, RetainLongitudinalModifiedDates,
		CleanDescriptors, CleanStructuredContent, CleanGraphics} {
		if p.opts[o] && r.opts[o] != "" {
			if oa, ok := parseAction(r.opts[o]); ok {
				a, because = oa, o.String()
			}
		}
	}
	return a, because, r
}

// Table returns the effective action for every attribute of Table E.1-1,
// plus the policy's overrides of attributes outside it, in tag order.
func (p *Policy) Table() []Rule {
	var out []Rule
	seen := map[dicom.Tag]bool{}
	for i := range profileRows {
		r := &profileRows[i]
		t := dicom.Tag(r.tag)
		a, because, _ := p.action(t)
		if r.mask != 0xFFFFFFFF {
			a, _ = parseAction(r.basic)
			because = "basic profile"
			for o := Option(0); o < numOptions; o++ {
				if p.opts[o] && r.opts[o] != "" {
					a, _ = parseAction(r.opts[o])
					because = o.String()
				}
			}
		}
		seen[t] = true
		out = append(out, Rule{Tag: t, Mask: r.mask, Name: r.name, Basic: r.basic, Action: a, Because: because})
	}
	for t, a := range p.overrides {
		if !seen[t] {
			name := t.String()
			if e, ok := dicom.Lookup(t); ok {
				name = e.Name
			}
			out = append(out, Rule{Tag: t, Mask: 0xFFFFFFFF, Name: name, Basic: "-", Action: a, Because: "policy override"})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Tag < out[j].Tag })
	return out
}
