package dcat

import (
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// ErrInvalid is wrapped by every error about a description that cannot be
// exported: a missing ID, a malformed URL, a value outside its vocabulary.
// Error texts name the dataset ID and the field, never the value.
var ErrInvalid = errors.New("invalid catalogue description")

// Dataset is the public description of one dataset, as a node publishes it
// to the hub. Only ID is required; see the package documentation for what
// the export writes when other fields are empty.
type Dataset struct {
	// ID is unique in the hub: "<node>/<dataset>". The part before the first
	// slash is the node; the rest (which may contain slashes) the dataset.
	ID          string
	Title       string
	Description string
	// Version is a semantic or calendar version of the dataset.
	Version  string
	Keywords []string

	// Node is the node's name (the publisher); when empty it is taken from
	// ID, and when set it must match ID's first part. NodeTitle is the data
	// holder's display name.
	Node, NodeTitle string
	// PublisherURL is the data holder's web page (absolute http or https).
	PublisherURL string

	// ContactName, ContactEmail and ContactURL describe the dataset's
	// contact point; ContactURL must be absolute http or https, ContactEmail
	// a bare address.
	ContactName, ContactEmail, ContactURL string

	// Licence is an SPDX licence ID (CC-BY-4.0) or an absolute URL.
	Licence string
	// AccessRights is PUBLIC, RESTRICTED or NON_PUBLIC (EU access-right
	// authority table); empty means NON_PUBLIC.
	AccessRights string
	// AccessConditions are the EUCAIM access conditions of the
	// distribution: DOWNLOAD, IN_SITU_PROCESSING, REMOTE_PROCESSING; empty
	// means REMOTE_PROCESSING.
	AccessConditions []string
	// Tier is the EUCAIM interoperability level, 1 to 3; 0 means 1.
	Tier int

	// Subjects is the number of unique individuals, Studies the number of
	// imaging studies (healthdcatap:numberOfUniqueIndividuals and
	// numberOfRecords).
	Subjects, Studies int
	// Sexes present in the dataset: female, male, other, unknown (DICOM's
	// F, M, O are accepted too).
	Sexes []string
	// AgeMin and AgeMax are the typical age range in years; the export
	// widens them to multiples of five.
	AgeMin, AgeMax *int
	// Conditions are the cancer conditions; the first is the primary one
	// (eucaim:hasCondition), all are listed as code values.
	Conditions []Condition
	// Modalities are DICOM modality codes (CT, MR, PT, ...), BodyParts DICOM
	// Body Part Examined values (CHEST, LUNG, ...), Manufacturers DICOM
	// Manufacturer values.
	Modalities    []string
	BodyParts     []string
	Manufacturers []string

	// Provenance says how the dataset was collected and processed; empty
	// means a standard statement about de-identification at the node.
	Provenance string

	// HDAB is the Health Data Access Body competent for the dataset, when
	// known (the profile forbids a placeholder).
	HDAB *Agent

	Issued, Modified time.Time
	// LandingPage is the hub's page of the dataset (absolute http or
	// https); empty means the dataset's IRI, which the hub serves.
	LandingPage string
}

// Condition is a coded cancer condition.
type Condition struct {
	// Code in System, for example C34 in ICD-10 or 363358000 in SNOMED CT.
	Code string
	// System is ICD-10, ICD-O-3 (topography) or SNOMED CT; other systems
	// are accepted and exported as minted terms.
	System string
	// Label is a human-readable name, in English.
	Label string
}

// Agent is an organisation with a contact: a name and at least one of an
// email address and an absolute http or https URL.
type Agent struct {
	Name, Email, URL string
}

// Catalogue is the hub's public catalogue.
type Catalogue struct {
	// BaseURL is the hub's public address (absolute http or https, no query
	// or fragment); every IRI of the export is built from it.
	BaseURL     string
	Title       string
	Description string
	// Publisher is the name of the organisation running the hub;
	// ContactEmail and ContactURL its contact (the hub's home page when
	// both are empty).
	Publisher                string
	ContactEmail, ContactURL string
	// Licence of the metadata itself (SPDX ID or URL); empty means CC0-1.0.
	Licence          string
	Issued, Modified time.Time
	Datasets         []Dataset
}

// Validate reports whether the catalogue can be exported: a usable BaseURL,
// valid datasets, and no ID used twice.
func (c Catalogue) Validate() error {
	if err := c.validateHub(); err != nil {
		return err
	}
	seen := make(map[string]bool, len(c.Datasets))
	for i := range c.Datasets {
		d := &c.Datasets[i]
		if err := d.Validate(); err != nil {
			return err
		}
		if seen[d.ID] {
			return fmt.Errorf("dcat: dataset %q listed twice: %w", d.ID, ErrInvalid)
		}
		seen[d.ID] = true
	}
	return nil
}

// validateHub checks the fields of the catalogue itself, not its datasets.
func (c Catalogue) validateHub() error {
	if _, err := c.base(); err != nil {
		return err
	}
	if err := checkURL(c.ContactURL); err != nil {
		return fmt.Errorf("dcat: catalogue contact URL: %w", err)
	}
	if err := checkEmail(c.ContactEmail); err != nil {
		return fmt.Errorf("dcat: catalogue contact email: %w", err)
	}
	if _, err := licenceIRI(c.Licence); err != nil {
		return fmt.Errorf("dcat: catalogue licence: %w", err)
	}
	return nil
}

// base returns BaseURL without a trailing slash, checked.
func (c Catalogue) base() (string, error) {
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("dcat: base URL must be an absolute http or https URL without query or fragment: %w", ErrInvalid)
	}
	return safeIRI(strings.TrimRight(c.BaseURL, "/")), nil
}

// Validate reports whether the dataset can be exported. Empty fields are
// fine; values that are present must be well formed.
func (d *Dataset) Validate() error {
	bad := func(field string) error {
		return fmt.Errorf("dcat: dataset %q: %s: %w", d.ID, field, ErrInvalid)
	}
	node, name, ok := strings.Cut(d.ID, "/")
	if !ok || node == "" || name == "" {
		return fmt.Errorf("dcat: dataset ID must be <node>/<dataset>: %w", ErrInvalid)
	}
	if d.Node != "" && d.Node != node {
		return bad("node does not match the ID")
	}
	for _, f := range []struct{ name, v string }{
		{"publisher URL", d.PublisherURL}, {"contact URL", d.ContactURL}, {"landing page", d.LandingPage},
	} {
		if checkURL(f.v) != nil {
			return bad(f.name + " must be an absolute http or https URL")
		}
	}
	if checkEmail(d.ContactEmail) != nil {
		return bad("contact email must be a bare email address")
	}
	if _, err := licenceIRI(d.Licence); err != nil {
		return bad("licence must be an SPDX ID or an absolute URL")
	}
	if _, ok := accessRightIRI(d.AccessRights); !ok {
		return bad("access rights must be PUBLIC, RESTRICTED or NON_PUBLIC")
	}
	for _, a := range d.AccessConditions {
		if _, ok := accessConditionIRI(a); !ok {
			return bad("access conditions must be DOWNLOAD, IN_SITU_PROCESSING or REMOTE_PROCESSING")
		}
	}
	if d.Tier < 0 || d.Tier > 3 {
		return bad("tier must be 1, 2 or 3")
	}
	if d.Subjects < 0 || d.Studies < 0 {
		return bad("counts must not be negative")
	}
	if (d.AgeMin != nil && *d.AgeMin < 0) || (d.AgeMax != nil && *d.AgeMax < 0) ||
		(d.AgeMin != nil && d.AgeMax != nil && *d.AgeMin > *d.AgeMax) {
		return bad("age range must be non-negative with minimum at most maximum")
	}
	for _, s := range d.Sexes {
		if _, ok := birthSexIRI(s); !ok {
			return bad("sexes must be female, male, other or unknown")
		}
	}
	for _, c := range d.Conditions {
		if strings.TrimSpace(c.Code) == "" || strings.TrimSpace(c.System) == "" {
			return bad("conditions need a code and a system")
		}
	}
	if h := d.HDAB; h != nil {
		if strings.TrimSpace(h.Name) == "" || (h.Email == "" && h.URL == "") ||
			checkEmail(h.Email) != nil || checkURL(h.URL) != nil {
			return bad("health data access body needs a name and a valid email or http(s) URL")
		}
	}
	return nil
}

// checkURL accepts "" or an absolute http or https URL with a host.
func checkURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ErrInvalid
	}
	return nil
}

// checkEmail accepts "" or a bare address (no display name, no brackets).
func checkEmail(s string) error {
	if s == "" {
		return nil
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return ErrInvalid
	}
	return nil
}

// spdxID matches the characters of SPDX licence identifiers.
var spdxID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.+-]*$`)

// licenceIRI returns the IRI of a licence given as an SPDX ID or a URL, or
// "" for none.
func licenceIRI(s string) (string, error) {
	switch {
	case s == "":
		return "", nil
	case strings.Contains(s, ":"):
		u, err := url.Parse(s)
		if err != nil || u.Scheme == "" || (u.Host == "" && u.Opaque == "") {
			return "", ErrInvalid
		}
		return safeIRI(s), nil
	case spdxID.MatchString(s):
		return spdxLicences + s, nil
	}
	return "", ErrInvalid
}
