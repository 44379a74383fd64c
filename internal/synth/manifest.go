package synth

import (
	"encoding/json"
	"slices"
	"strings"
)

// ManifestVersion is the version of the manifest layout.
const ManifestVersion = 1

// Manifest is the ground truth of a generated cohort, written as
// manifest.json. Counts cover every DICOM file written, risky objects
// included.
type Manifest struct {
	Version   int    `json:"version"`
	Seed      uint64 `json:"seed"`
	Size      Size   `json:"size"`
	Patients  int    `json:"patients"`
	Studies   int    `json:"studies"`
	Series    int    `json:"series"`
	Instances int    `json:"instances"`
	// Bytes is the total size of the DICOM files.
	Bytes int64 `json:"bytes"`
	// Modalities counts by Modality (0008,0060): CT, MR, PT, US, OT.
	Modalities map[string]Count `json:"modalities"`
	// BodyParts counts by Body Part Examined (0018,0015).
	BodyParts map[string]Count `json:"body_parts"`
	// SOPClasses counts instances by SOP Class UID.
	SOPClasses map[string]int `json:"sop_classes"`
	// CancerTypes counts patients by cancer type (clinical.csv
	// cancer_type).
	CancerTypes map[string]int `json:"cancer_types"`
	// ClinicalRows is the number of data rows of clinical.csv.
	ClinicalRows int `json:"clinical_rows"`
	// Risky lists the objects with burned-in identifying text, in path
	// order.
	Risky []RiskyObject `json:"risky"`
}

// Count tallies a category: a patient or study counts once if any of its
// series falls in the category.
type Count struct {
	Patients  int   `json:"patients"`
	Studies   int   `json:"studies"`
	Series    int   `json:"series"`
	Instances int   `json:"instances"`
	Bytes     int64 `json:"bytes"`
}

// RiskyObject is one file a de-identifier must not pass as it is.
type RiskyObject struct {
	// Path is relative to the cohort directory, with forward slashes.
	Path       string `json:"path"`
	SOPClass   string `json:"sop_class_uid"`
	Modality   string `json:"modality"`
	PatientID  string `json:"patient_id"`
	Reason     string `json:"reason"`
	BurnedText bool   `json:"burned_in_text"`
}

func (m *Manifest) encode(w writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(m)
}

// buildManifest tallies the plan; sizes holds each file's size in the
// order of cohort.instances.
func buildManifest(opts Options, c *cohort, sizes []int64) Manifest {
	m := Manifest{
		Version: ManifestVersion, Seed: opts.Seed, Size: opts.Size,
		Modalities: map[string]Count{}, BodyParts: map[string]Count{},
		SOPClasses: map[string]int{}, CancerTypes: map[string]int{},
		Risky: []RiskyObject{},
	}
	// bump adds one to the patient or study count of every key seen.
	bump := func(counts map[string]Count, seen map[string]bool, patients bool) {
		for key := range seen {
			cnt := counts[key]
			if patients {
				cnt.Patients++
			} else {
				cnt.Studies++
			}
			counts[key] = cnt
		}
	}
	k := 0
	for _, p := range c.patients {
		m.Patients++
		m.ClinicalRows++
		m.CancerTypes[p.site.cancerType]++
		pMods, pParts := map[string]bool{}, map[string]bool{}
		for _, st := range p.studies {
			m.Studies++
			sMods, sParts := map[string]bool{}, map[string]bool{}
			for _, se := range st.series {
				m.Series++
				var bytes int64
				for _, in := range se.instances {
					bytes += sizes[k]
					k++
					m.SOPClasses[se.sop]++
					if se.risky != "" {
						m.Risky = append(m.Risky, RiskyObject{
							Path: in.path(), SOPClass: se.sop, Modality: se.modality,
							PatientID: p.id, Reason: se.risky, BurnedText: true,
						})
					}
				}
				m.Instances += len(se.instances)
				m.Bytes += bytes
				for _, t := range []struct {
					counts map[string]Count
					key    string
				}{{m.Modalities, se.modality}, {m.BodyParts, se.bodyPart}} {
					cnt := t.counts[t.key]
					cnt.Series++
					cnt.Instances += len(se.instances)
					cnt.Bytes += bytes
					t.counts[t.key] = cnt
				}
				sMods[se.modality], sParts[se.bodyPart] = true, true
				pMods[se.modality], pParts[se.bodyPart] = true, true
			}
			bump(m.Modalities, sMods, false)
			bump(m.BodyParts, sParts, false)
		}
		bump(m.Modalities, pMods, true)
		bump(m.BodyParts, pParts, true)
	}
	slices.SortFunc(m.Risky, func(a, b RiskyObject) int { return strings.Compare(a.Path, b.Path) })
	return m
}
