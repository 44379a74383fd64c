package synth

import (
	"math/rand/v2"
	"strconv"
)

func itoa(n int) string { return strconv.Itoa(n) }

// cancerSite is one primary site with consistent codes and imaging.
type cancerSite struct {
	cancerType string // EUCAIM cancer type, e.g. "lung"
	// sex restricts the site to one birth sex (0: either).
	sex byte
	// weight is the relative frequency in cohorts.
	weight int
	// topographies are ICD-O-3 topography codes with their labels and the
	// matching ICD-10 code.
	topographies []topography
	morphologies []morphology
	// paired sites have a laterality (left or right).
	paired bool
	// host is the organ the lesion sits in.
	host tissue
	// studies are the kinds of imaging study done for this site, with
	// weights.
	studies []studyChoice
	// maxT is the highest T category used (T4 for most sites).
	maxT int
	// treatment probabilities in percent.
	surgery, chemo, radio, hormone, immuno int
	// lesionSUV is the typical FDG uptake of the primary tumour.
	lesionSUV float64
}

type topography struct {
	code, label, icd10 string
}

type morphology struct {
	code, label string
	weight      int
}

type studyChoice struct {
	kind     studyKind
	bodyPart string
	weight   int
}

type studyKind int

const (
	studyCT studyKind = iota
	studyMR
	studyPET
	studyUS
)

var cancerSites = []*cancerSite{
	{
		cancerType: "breast", sex: 'F', weight: 5, paired: true, host: tBreast, maxT: 4, lesionSUV: 6,
		topographies: []topography{
			{"C50.4", "Upper-outer quadrant of breast", "C50.4"},
			{"C50.2", "Upper-inner quadrant of breast", "C50.2"},
			{"C50.9", "Breast, NOS", "C50.9"},
		},
		morphologies: []morphology{
			{"8500/3", "Infiltrating duct carcinoma, NOS", 8},
			{"8520/3", "Lobular carcinoma, NOS", 2},
		},
		studies: []studyChoice{
			{studyMR, "BREAST", 5},
			{studyCT, "CHEST", 3},
			{studyPET, "WHOLEBODY", 2},
		},
		surgery: 85, chemo: 55, radio: 60, hormone: 65, immuno: 10,
	},
	{
		cancerType: "lung", weight: 5, paired: true, host: tLung, maxT: 4, lesionSUV: 9,
		topographies: []topography{
			{"C34.1", "Upper lobe, lung", "C34.1"},
			{"C34.3", "Lower lobe, lung", "C34.3"},
			{"C34.9", "Lung, NOS", "C34.9"},
		},
		morphologies: []morphology{
			{"8140/3", "Adenocarcinoma, NOS", 5},
			{"8070/3", "Squamous cell carcinoma, NOS", 3},
			{"8041/3", "Small cell carcinoma, NOS", 1},
		},
		studies: []studyChoice{
			{studyCT, "CHEST", 6},
			{studyPET, "WHOLEBODY", 3},
		},
		surgery: 35, chemo: 65, radio: 50, immuno: 40,
	},
	{
		cancerType: "prostate", sex: 'M', weight: 4, host: tProstate, maxT: 4, lesionSUV: 4,
		topographies: []topography{
			{"C61.9", "Prostate gland", "C61"},
		},
		morphologies: []morphology{
			{"8140/3", "Adenocarcinoma, NOS", 9},
			{"8500/3", "Infiltrating duct carcinoma, NOS", 1},
		},
		studies: []studyChoice{
			{studyMR, "PROSTATE", 6},
			{studyCT, "PELVIS", 2},
			{studyPET, "WHOLEBODY", 1},
		},
		surgery: 50, chemo: 15, radio: 45, hormone: 50,
	},
	{
		cancerType: "colorectal", weight: 4, host: tBowel, maxT: 4, lesionSUV: 10,
		topographies: []topography{
			{"C18.7", "Sigmoid colon", "C18.7"},
			{"C20.9", "Rectum, NOS", "C20"},
		},
		morphologies: []morphology{
			{"8140/3", "Adenocarcinoma, NOS", 8},
			{"8480/3", "Mucinous adenocarcinoma", 2},
		},
		studies: []studyChoice{
			{studyCT, "ABDOMEN", 6},
			{studyMR, "PELVIS", 3},
			{studyPET, "WHOLEBODY", 1},
		},
		surgery: 80, chemo: 60, radio: 30, immuno: 5,
	},
	{
		cancerType: "liver", weight: 2, host: tLiver, maxT: 4, lesionSUV: 5,
		topographies: []topography{
			{"C22.0", "Liver", "C22.0"},
		},
		morphologies: []morphology{
			{"8170/3", "Hepatocellular carcinoma, NOS", 9},
			{"8160/3", "Cholangiocarcinoma", 1},
		},
		studies: []studyChoice{
			{studyCT, "ABDOMEN", 5},
			{studyMR, "ABDOMEN", 4},
		},
		surgery: 35, chemo: 30, radio: 15, immuno: 35,
	},
	{
		cancerType: "pancreas", weight: 2, host: tPancreas, maxT: 4, lesionSUV: 7,
		topographies: []topography{
			{"C25.0", "Head of pancreas", "C25.0"},
			{"C25.9", "Pancreas, NOS", "C25.9"},
		},
		morphologies: []morphology{
			{"8500/3", "Infiltrating duct carcinoma, NOS", 8},
			{"8140/3", "Adenocarcinoma, NOS", 2},
		},
		studies: []studyChoice{
			{studyCT, "ABDOMEN", 6},
			{studyMR, "ABDOMEN", 2},
			{studyPET, "WHOLEBODY", 1},
		},
		surgery: 25, chemo: 80, radio: 20, immuno: 5,
	},
}

func weighted[T any](r *rand.Rand, items []T, w func(T) int) T {
	total := 0
	for _, it := range items {
		total += w(it)
	}
	n := r.IntN(total)
	for _, it := range items {
		n -= w(it)
		if n < 0 {
			return it
		}
	}
	return items[len(items)-1]
}

// stage is a TNM classification with its group.
type stage struct {
	t, n, m int
	group   string
	tSub    string // "a" or "b" or ""
}

func (s stage) T() string { return "T" + itoa(s.t) + s.tSub }
func (s stage) N() string { return "N" + itoa(s.n) }
func (s stage) M() string { return "M" + itoa(s.m) }

// newStage draws a clinical TNM and derives a simplified stage group that
// follows the shape of the AJCC/UICC 8th edition grouping (M1 is IV; node
// involvement moves to III; T size moves between I and II). It is
// consistent, not clinically exact.
func newStage(r *rand.Rand, site *cancerSite) stage {
	var s stage
	s.t = 1 + weightedIndex(r, []int{35, 35, 18, 12})
	if s.t > site.maxT {
		s.t = site.maxT
	}
	if s.t <= 2 && r.IntN(2) == 0 {
		i := r.IntN(2)
		s.tSub = "ab"[i : i+1]
	}
	s.n = weightedIndex(r, []int{55, 25, 15, 5})
	if site.cancerType == "prostate" && s.n > 1 {
		s.n = 1
	}
	if s.t == 4 || s.n >= 2 {
		if r.IntN(3) == 0 {
			s.m = 1
		}
	} else if r.IntN(12) == 0 {
		s.m = 1
	}
	switch {
	case s.m == 1:
		s.group = "IV"
	case s.n >= 2 || s.t == 4:
		s.group = "III"
	case s.n == 1:
		if s.t <= 2 {
			s.group = "II"
		} else {
			s.group = "III"
		}
	case s.t == 1:
		s.group = "I"
	default:
		s.group = "II"
	}
	return s
}

func weightedIndex(r *rand.Rand, w []int) int {
	total := 0
	for _, x := range w {
		total += x
	}
	n := r.IntN(total)
	for i, x := range w {
		n -= x
		if n < 0 {
			return i
		}
	}
	return len(w) - 1
}

// lesionRadius returns the radius in mm of the primary tumour for a T
// category, so the images agree with the table.
func lesionRadius(r *rand.Rand, t int) float64 {
	lo := []float64{0, 5, 12, 20, 26}[t]
	hi := []float64{0, 10, 18, 26, 32}[t]
	return lo + r.Float64()*(hi-lo)
}
