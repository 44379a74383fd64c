package synth

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// SOP classes written.
const (
	sopCT = "1.2.840.10008.5.1.4.1.1.2"
	sopMR = "1.2.840.10008.5.1.4.1.1.4"
	sopPT = "1.2.840.10008.5.1.4.1.1.128"
	sopUS = "1.2.840.10008.5.1.4.1.1.6.1"
	sopSC = "1.2.840.10008.5.1.4.1.1.7"
)

// Reasons given for risky objects in the manifest.
const (
	RiskUltrasound       = "ultrasound image with patient details burned into the pixels (BurnedInAnnotation YES)"
	RiskSecondaryCapture = "secondary capture with patient details burned into the pixels (BurnedInAnnotation YES)"
)

// cohort is the complete plan of a cohort: every value of every file
// follows from it.
type cohort struct {
	opts     Options
	home     *culture
	insts    []*institution
	patients []*patient
	// widths of the zero-padded path components.
	pw int
}

type institution struct {
	name, dept, address string
	code                string // short letters for station names
	phone               string
	cult                *culture
	issuer              string
}

// equipment is one invented scanner.
type equipment struct {
	manufacturer, model, serial, software, station string
}

type patient struct {
	c           *cohort
	index       int // 1-based
	id          string
	issuer      string
	otherID     string
	otherIssuer string
	name        person
	sex         byte
	birth       time.Time
	address     string
	phone       string
	height      float64 // m
	weight      float64 // kg
	inst        *institution

	site         *cancerSite
	topo         topography
	morph        morphology
	laterality   string // "L", "R" or ""
	diagnosis    time.Time
	ageAtDx      int
	stage        stage
	surgery      bool
	chemo        bool
	radio        bool
	hormone      bool
	immuno       bool
	intent       string
	treatStart   int // days from diagnosis
	deceased     bool
	causeOfDeath string
	lastContact  time.Time
	lastEpisode  string

	ph      *phantom
	studies []*study
}

type study struct {
	p           *patient
	index       int // 1-based
	uid         string
	forUID      string
	date        time.Time // date and time of day
	accession   string
	studyID     string
	reqProcID   string
	spsID       string
	description string
	kind        studyKind
	bodyPart    string
	referring   person
	refID       string
	contrast    bool
	lesionScale float64
	series      []*series
}

type seriesKind int

const (
	kCT seriesKind = iota
	kMRT1
	kMRT2
	kMRT1Post
	kMRDWI
	kPETAC
	kPETNAC
	kUS
	kSC
)

type series struct {
	st          *study
	index       int // 1-based directory index
	number      int // Series Number
	uid         string
	modality    string
	sop         string
	kind        seriesKind
	description string
	protocol    string
	bodyPart    string
	kernel      string
	phase       string // CT contrast phase: "", "ARTERIAL", "PORTAL", "DELAYED"
	window      [2]float64
	windowName  string
	rows, cols  int
	slices      int
	fov         float64
	cx, cy      float64
	zTop        float64 // centre of the first slice
	dz          float64 // slice spacing (positions go down from zTop)
	thickness   float64
	time        time.Time
	eq          equipment
	performing  person
	operator    person
	risky       string
	rgb         bool // ultrasound in colour
	// PET
	injected  float64 // Bq at injection
	injection time.Time
	instances []*instance
}

type instance struct {
	se    *series
	index int // 1-based, Instance Number
	uid   string
}

// uid derives a UID under 2.25 from the seed and a path naming the object:
// the 128 bits are those of a version 8 UUID made from SHA-256, so the
// UID is valid (no leading zeros, at most 44 characters).
func uid(seed uint64, path string) string {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], seed)
	h := sha256.New()
	h.Write(b[:])
	h.Write([]byte(path))
	sum := h.Sum(nil)[:16]
	sum[6] = sum[6]&0x0f | 0x80 // version 8
	sum[8] = sum[8]&0x3f | 0x80 // RFC 9562 variant
	return "2.25." + new(big.Int).SetBytes(sum).String()
}

// number derives an identifier number in [0, mod) that is unique for
// each n below mod (mod a power of ten: the multiplier is odd and not a
// multiple of five, so it is prime to mod). The salt keeps the series of
// different identifiers apart.
func number(seed uint64, salt string, n, mod uint64) uint64 {
	h := fnv.New64a()
	h.Write([]byte(salt))
	off := mix64(seed ^ h.Sum64())
	return (n*2654435761 + off%mod) % mod
}

func planCohort(opts Options) *cohort {
	c := &cohort{opts: opts, pw: max(4, len(itoa(opts.Patients)))}
	r := rand.New(rand.NewPCG(opts.Seed, 0xc0407))
	// The home country: most patients come from there.
	for {
		c.home = pick(r, cultures)
		if c.home.code != "JP" {
			break
		}
	}
	for _, t := range c.home.insts {
		in := &institution{name: t.name, dept: t.dept, cult: c.home}
		in.address = t.street + ", " + c.home.cities[t.city] + ", " + c.home.country
		in.phone = c.home.phone(r)
		for _, w := range strings.Fields(t.name) {
			if rw := []rune(w); len(rw) > 0 && rw[0] >= 'A' && rw[0] <= 'Z' {
				in.code += string(rw[0])
			}
		}
		if in.code == "" {
			in.code = "H"
		}
		in.issuer = strings.ToUpper(t.name)
		if len(in.issuer) > 60 {
			in.issuer = in.code + " HOSPITAL"
		}
		c.insts = append(c.insts, in)
	}
	for i := 1; i <= opts.Patients; i++ {
		c.patients = append(c.patients, c.planPatient(i))
	}
	c.ensureRisky(r)
	for _, p := range c.patients {
		for _, st := range p.studies {
			for _, se := range st.series {
				se.instances = make([]*instance, se.slices)
				for k := range se.instances {
					se.instances[k] = &instance{se: se, index: k + 1,
						uid: uid(opts.Seed, fmt.Sprintf("instance/%d/%d/%d/%d", p.index, st.index, se.index, k+1))}
				}
			}
		}
	}
	return c
}

// instances lists every instance in path order.
func (c *cohort) instances() []*instance {
	var out []*instance
	for _, p := range c.patients {
		for _, st := range p.studies {
			for _, se := range st.series {
				out = append(out, se.instances...)
			}
		}
	}
	return out
}

func (in *instance) dir() string {
	se := in.se
	st := se.st
	return fmt.Sprintf("%s/%0*d/%02d/%02d", DICOMDir, st.p.c.pw, st.p.index, st.index, se.index)
}

func (in *instance) path() string {
	return fmt.Sprintf("%s/%04d.dcm", in.dir(), in.index)
}

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func (c *cohort) planPatient(index int) *patient {
	seed := c.opts.Seed
	r := rand.New(rand.NewPCG(seed, 0x1000+uint64(index)))
	p := &patient{c: c, index: index}
	cult := c.home
	if r.IntN(4) == 0 {
		cult = otherCulture(r)
	}
	p.site = weighted(r, c.sites(), func(s *cancerSite) int { return s.weight })
	p.sex = p.site.sex
	if p.sex == 0 {
		p.sex = "FM"[r.IntN(2)]
	}
	p.name = newPerson(r, cult, p.sex)
	p.inst = pick(r, c.insts)

	// Identifiers: the hospital number is unique by construction.
	p.id = fmt.Sprintf("%d%07d", 1+r.IntN(9), number(seed, "patient", uint64(index), 1e7))
	p.issuer = p.inst.issuer
	p.otherID = fmt.Sprintf("%s%09d", cult.code, number(seed, "national", uint64(index), 1e9))
	p.otherIssuer = "NATIONAL HEALTH ID " + cult.code

	// Dates: diagnosis between 2016 and mid 2022, so three studies and a
	// follow-up fit before the reference date.
	p.diagnosis = date(2016, 1, 4).AddDate(0, 0, r.IntN(6*365+150))
	lo, hi := 45, 85
	if p.site.cancerType == "breast" {
		lo, hi = 35, 80
	}
	p.ageAtDx = lo + r.IntN(hi-lo+1)
	p.birth = p.diagnosis.AddDate(-p.ageAtDx, 0, -1-r.IntN(364))
	if p.sex == 'F' {
		p.height = 1.55 + r.Float64()*0.2
	} else {
		p.height = 1.65 + r.Float64()*0.25
	}
	bmi := 19 + r.Float64()*13
	p.weight = math.Round(bmi*p.height*p.height*10) / 10
	p.height = math.Round(p.height*100) / 100
	home := cult
	p.address = home.address(pick(r, home.streets), 1+r.IntN(120), home.postcode(r), pick(r, home.cities)) + ", " + home.country
	p.phone = home.phone(r)

	// Disease.
	p.topo = pick(r, p.site.topographies)
	p.morph = weighted(r, p.site.morphologies, func(m morphology) int { return m.weight })
	if p.site.paired {
		i := r.IntN(2)
		p.laterality = "LR"[i : i+1]
	}
	p.stage = newStage(r, p.site)
	pct := func(n int) bool { return r.IntN(100) < n }
	p.surgery = pct(p.site.surgery)
	p.chemo = pct(p.site.chemo)
	p.radio = pct(p.site.radio)
	p.hormone = pct(p.site.hormone)
	p.immuno = pct(p.site.immuno)
	p.intent = "curative"
	if p.stage.m == 1 {
		p.intent = "palliative"
		p.surgery = p.surgery && pct(20)
		p.chemo = p.chemo || p.immuno || pct(70)
		if p.site.cancerType == "prostate" {
			p.hormone = true // androgen deprivation
		}
	}
	if !(p.surgery || p.chemo || p.radio || p.hormone || p.immuno) && p.site.cancerType != "prostate" {
		// Only early prostate cancer is left to active surveillance.
		p.surgery = p.stage.m == 0
		p.chemo = p.stage.m == 1
	}
	treated := p.surgery || p.chemo || p.radio || p.hormone || p.immuno
	if !treated {
		p.intent = ""
	} else {
		p.treatStart = 14 + r.IntN(50)
	}

	p.ph = newPhantom(r, p.sex, p.weight, p.height, p.site, p.topo.code, p.laterality, p.stage.t)

	// Imaging: one to three studies, the first for staging soon after the
	// diagnosis, the others for follow-up.
	nStudies := 1 + r.IntN(3)
	day := p.diagnosis.AddDate(0, 0, 2+r.IntN(20))
	deathRisk := map[string]int{"I": 5, "II": 12, "III": 30, "IV": 60}[p.stage.group]
	p.deceased = pct(deathRisk)
	grow := p.stage.m == 1 || (p.deceased && pct(70))
	for s := 1; s <= nStudies; s++ {
		if s > 1 {
			day = day.AddDate(0, 0, 60+r.IntN(240))
		}
		st := c.planStudy(r, p, s, day)
		if s > 1 {
			f := float64(s - 1)
			if grow {
				st.lesionScale = 1 + 0.15*f + r.Float64()*0.1
			} else if treated {
				st.lesionScale = math.Max(0.35, 1-0.25*f-r.Float64()*0.1)
			} else {
				st.lesionScale = 1 + 0.05*f
			}
		}
		p.studies = append(p.studies, st)
	}
	last := p.studies[len(p.studies)-1].date
	last = time.Date(last.Year(), last.Month(), last.Day(), 0, 0, 0, 0, time.UTC)
	if p.deceased {
		p.lastContact = last.AddDate(0, 0, 20+r.IntN(500))
		p.causeOfDeath = "cancer"
		if pct(20) {
			p.causeOfDeath = "other"
		}
	} else {
		p.lastContact = last.AddDate(0, 0, 30+r.IntN(900))
	}
	if p.lastContact.After(clock) {
		p.lastContact = clock
		if p.deceased && !p.lastContact.After(last) {
			p.deceased = false
			p.causeOfDeath = ""
		}
	}
	switch {
	case !treated:
		p.lastEpisode = "Active Surveillance"
	case p.deceased && p.causeOfDeath == "cancer", grow:
		p.lastEpisode = "Progression"
	case pct(70):
		p.lastEpisode = "Remission"
	case pct(50):
		p.lastEpisode = "Relapse"
	default:
		p.lastEpisode = "Treatment"
	}
	return p
}

// ageOn returns the age in whole years on day d.
func ageOn(birth, d time.Time) int {
	y := d.Year() - birth.Year()
	if d.Month() < birth.Month() || (d.Month() == birth.Month() && d.Day() < birth.Day()) {
		y--
	}
	return y
}

var vendors = map[string][]equipment{
	"CT": {
		{manufacturer: "Aurora Imaging", model: "Aurora CT 128", software: "AUR-CT 4.2.1"},
		{manufacturer: "Helix Medical Systems", model: "Helix Revo 64", software: "HX 12.0 SP2"},
	},
	"MR": {
		{manufacturer: "Aurora Imaging", model: "Aurora MR 3T", software: "AUR-MR 7.1"},
		{manufacturer: "Norden Scientific", model: "Norden Aria 1.5T", software: "NS-MR R5"},
	},
	"PT": {
		{manufacturer: "Norden Scientific", model: "Norden Vista PET/CT", software: "NS-PET 3.4"},
	},
	"US": {
		{manufacturer: "Helix Medical Systems", model: "Helix Sono 9", software: "HS9 2.0.3"},
	},
	"OT": {
		{manufacturer: "Aurora Imaging", model: "Aurora Dose Reporter", software: "ADR 1.3"},
	},
}

// sites are the cancer sites the options allow.
func (c *cohort) sites() []*cancerSite {
	if len(c.opts.CancerTypes) == 0 {
		return cancerSites
	}
	var out []*cancerSite
	for _, s := range cancerSites {
		if slices.Contains(c.opts.CancerTypes, s.cancerType) {
			out = append(out, s)
		}
	}
	return out
}

func (c *cohort) equipment(r *rand.Rand, inst *institution, modality string) equipment {
	list := vendors[modality]
	if len(c.opts.Manufacturers) > 0 {
		var some []equipment
		for _, e := range list {
			if slices.Contains(c.opts.Manufacturers, e.manufacturer) {
				some = append(some, e)
			}
		}
		if len(some) > 0 {
			list = some
		}
	}
	i := r.IntN(len(list))
	e := list[i]
	e.serial = fmt.Sprintf("%s%05d", strings.ToUpper(modality[:1]), 10000+r.IntN(89999))
	e.station = fmt.Sprintf("%s-%s%d", inst.code, modality, 1+i)
	if len(e.station) > 16 {
		e.station = e.station[:16]
	}
	return e
}

var studyDescriptions = map[studyKind]map[string][]string{
	studyCT: {
		"CHEST":   {"CT THORAX WITH CONTRAST", "CT Chest staging", "CT THORAX"},
		"ABDOMEN": {"CT ABDOMEN PELVIS WITH CONTRAST", "CT Abdomen/Pelvis", "CT ABD PEL CE"},
		"PELVIS":  {"CT PELVIS", "CT Pelvis with contrast"},
	},
	studyMR: {
		"BREAST":   {"MRI BREAST BILATERAL WITH CONTRAST", "MR Mamma bilateral"},
		"PROSTATE": {"MRI PROSTATE MULTIPARAMETRIC", "mpMRI Prostate"},
		"ABDOMEN":  {"MRI ABDOMEN LIVER PROTOCOL", "MR Upper abdomen with contrast"},
		"PELVIS":   {"MRI RECTUM STAGING", "MR Pelvis rectal protocol"},
	},
	studyPET: {
		"WHOLEBODY": {"PET-CT FDG WHOLE BODY", "PET/CT F18-FDG Oncology"},
	},
	studyUS: {
		"BREAST":   {"US BREAST", "Ultrasound breast targeted"},
		"ABDOMEN":  {"US ABDOMEN", "Ultrasound upper abdomen"},
		"PROSTATE": {"US PROSTATE TRANSRECTAL"},
		"CHEST":    {"US THORAX PLEURA"},
	},
}

func (c *cohort) planStudy(r *rand.Rand, p *patient, index int, day time.Time) *study {
	ch := weighted(r, p.site.studies, func(s studyChoice) int { return s.weight })
	st := &study{p: p, index: index, kind: ch.kind, bodyPart: ch.bodyPart, lesionScale: 1}
	st.date = day.Add(time.Duration(7*3600+r.IntN(11*3600)) * time.Second)
	c.fillStudy(r, st)
	switch st.kind {
	case studyCT:
		c.planCTSeries(r, st)
	case studyMR:
		c.planMRSeries(r, st)
	case studyPET:
		c.planPETSeries(r, st)
	}
	return st
}

// fillStudy sets a study's identifiers, description and referring
// physician.
func (c *cohort) fillStudy(r *rand.Rand, st *study) {
	p := st.p
	seed := c.opts.Seed
	n := uint64(p.index)*8 + uint64(st.index)
	st.uid = uid(seed, fmt.Sprintf("study/%d/%d", p.index, st.index))
	st.forUID = uid(seed, fmt.Sprintf("frame/%d/%d", p.index, st.index))
	st.accession = fmt.Sprintf("A%09d", number(seed, "accession", n, 1e9))
	st.studyID = itoa(1 + r.IntN(99999))
	st.reqProcID = fmt.Sprintf("RP%09d", number(seed, "procedure", n, 1e9))
	st.spsID = fmt.Sprintf("SPS%09d", number(seed, "step", n, 1e9))
	st.description = pick(r, studyDescriptions[st.kind][st.bodyPart])
	if r.IntN(5) == 0 {
		// Free text that carries the patient's name, as happens when a
		// technologist types it in.
		st.description = st.description + " - " + strings.ToUpper(p.name.family) + " " + firstRune(p.name.given)
	}
	st.referring = newPerson(r, p.inst.cult, "FM"[r.IntN(2)])
	st.refID = fmt.Sprintf("D%06d", r.IntN(1000000))
	st.contrast = r.IntN(10) < 7
}

func firstRune(s string) string {
	for _, c := range s {
		return string(c)
	}
	return ""
}

// baseSeries fills what every series shares.
func (c *cohort) baseSeries(r *rand.Rand, st *study, modality string, kind seriesKind) *series {
	p := st.p
	se := &series{st: st, index: len(st.series) + 1, modality: modality, kind: kind, bodyPart: st.bodyPart}
	se.uid = uid(c.opts.Seed, fmt.Sprintf("series/%d/%d/%d", p.index, st.index, se.index))
	se.time = st.date.Add(time.Duration(60*(2+6*len(st.series))+r.IntN(60)) * time.Second)
	se.eq = c.equipment(r, p.inst, modality)
	se.operator = newPerson(r, p.inst.cult, "FM"[r.IntN(2)])
	se.performing = newPerson(r, p.inst.cult, "FM"[r.IntN(2)])
	switch modality {
	case "CT":
		se.sop = sopCT
	case "MR":
		se.sop = sopMR
	case "PT":
		se.sop = sopPT
	case "US":
		se.sop = sopUS
	default:
		se.sop = sopSC
	}
	st.series = append(st.series, se)
	return se
}

func (c *cohort) slices(r *rand.Rand, modality string) int {
	if c.opts.Size == SizeBench {
		switch modality {
		case "CT":
			return 80 + r.IntN(81)
		case "MR":
			return 30 + r.IntN(21)
		default:
			return 50 + r.IntN(41)
		}
	}
	return 8 + r.IntN(17)
}

func (c *cohort) matrix(modality string) int {
	bench := c.opts.Size == SizeBench
	switch modality {
	case "CT":
		if c.opts.CTMatrix != 0 {
			return c.opts.CTMatrix
		}
		if bench {
			return 512
		}
		return 128
	case "MR":
		if bench {
			return 256
		}
		return 128
	}
	if bench {
		return 128
	}
	return 64
}

// geometry sets the matrix, field of view and slice positions.
func (c *cohort) geometry(r *rand.Rand, se *series) {
	ph := se.st.p.ph
	n := c.matrix(se.modality)
	se.rows, se.cols = n, n
	se.slices = c.slices(r, se.modality)
	switch {
	case se.modality == "PT":
		se.fov = math.Min(700, math.Max(500, math.Round((2*ph.a+150)/10)*10))
	case se.modality == "CT":
		se.fov = math.Min(500, math.Max(300, math.Round((2*ph.a+50+r.Float64()*30)/10)*10))
	case se.bodyPart == "BREAST":
		se.fov, se.cy = 340, -ph.b*0.45
	case se.bodyPart == "PROSTATE":
		se.fov, se.cy = 200, ph.b*0.05
	case se.bodyPart == "PELVIS":
		se.fov, se.cy = 280, ph.b*0.1
	default:
		se.fov = math.Round((2*ph.a+40)/10) * 10
	}
	zr := bodyRange[se.bodyPart]
	se.dz = math.Round((zr[1]-zr[0])/float64(se.slices)*10) / 10
	se.zTop = zr[1] - se.dz/2
	se.thickness = se.dz
	if se.modality == "MR" {
		se.thickness = math.Round(se.dz*0.9*10) / 10
	}
}

type ctProtocol struct {
	desc, kernel, phase string
	window              [2]float64
	windowName          string
}

var ctProtocols = map[string][]ctProtocol{
	"CHEST": {
		{"THORAX SOFT TISSUE", "STANDARD", "PORTAL", [2]float64{40, 400}, "MEDIASTINUM"},
		{"THORAX LUNG", "LUNG", "PORTAL", [2]float64{-600, 1500}, "LUNG"},
		{"THORAX BONE", "BONE", "PORTAL", [2]float64{450, 1500}, "BONE"},
	},
	"ABDOMEN": {
		{"ABD PELVIS PORTAL VENOUS", "STANDARD", "PORTAL", [2]float64{50, 350}, "ABDOMEN"},
		{"ABDOMEN ARTERIAL", "STANDARD", "ARTERIAL", [2]float64{50, 350}, "ABDOMEN"},
		{"ABDOMEN DELAYED", "SOFT", "DELAYED", [2]float64{60, 300}, "LIVER"},
	},
	"PELVIS": {
		{"PELVIS STANDARD", "STANDARD", "PORTAL", [2]float64{40, 400}, "SOFT TISSUE"},
		{"PELVIS SOFT TISSUE", "SOFT", "PORTAL", [2]float64{40, 350}, "SOFT TISSUE"},
		{"PELVIS BONE", "BONE", "PORTAL", [2]float64{450, 1500}, "BONE"},
	},
}

func (c *cohort) planCTSeries(r *rand.Rand, st *study) {
	list := ctProtocols[st.bodyPart]
	n := 1 + r.IntN(3)
	for i, k := range r.Perm(len(list))[:n] {
		pr := list[k]
		se := c.baseSeries(r, st, "CT", kCT)
		se.number = 2 + i
		se.description, se.kernel, se.window, se.windowName = pr.desc, pr.kernel, pr.window, pr.windowName
		se.protocol = "ONCO " + st.bodyPart
		if st.contrast {
			se.phase = pr.phase
		} else {
			se.description = strings.Replace(se.description, "PORTAL VENOUS ", "", 1) + " NATIVE"
		}
		c.geometry(r, se)
	}
	c.maybeName(r, st)
}

type mrProtocol struct {
	desc string
	kind seriesKind
}

var mrProtocols = map[string][]mrProtocol{
	"BREAST":   {{"T1 FL3D AX", kMRT1}, {"T2 TSE AX STIR", kMRT2}, {"T1 FL3D AX POST", kMRT1Post}, {"DWI b800 AX", kMRDWI}},
	"PROSTATE": {{"T2 TSE AX", kMRT2}, {"DWI b1400 AX", kMRDWI}, {"T1 VIBE AX DCE", kMRT1Post}},
	"ABDOMEN":  {{"T2 HASTE AX", kMRT2}, {"T1 VIBE AX PRE", kMRT1}, {"T1 VIBE AX PORTAL", kMRT1Post}, {"DWI b800 AX", kMRDWI}},
	"PELVIS":   {{"T2 TSE AX HIGH RES", kMRT2}, {"DWI b1000 AX", kMRDWI}, {"T1 TSE AX", kMRT1}},
}

func (c *cohort) planMRSeries(r *rand.Rand, st *study) {
	list := mrProtocols[st.bodyPart]
	n := 1 + r.IntN(3)
	idx := r.Perm(len(list))[:n]
	// Keep acquisition order: lower protocol index first.
	for i := 1; i < len(idx); i++ {
		for j := i; j > 0 && idx[j] < idx[j-1]; j-- {
			idx[j], idx[j-1] = idx[j-1], idx[j]
		}
	}
	for i, k := range idx {
		pr := list[k]
		se := c.baseSeries(r, st, "MR", pr.kind)
		se.number = 100*(i+1) + 1
		se.description = pr.desc
		se.protocol = "ONCO " + st.bodyPart
		c.geometry(r, se)
	}
	c.maybeName(r, st)
}

func (c *cohort) planPETSeries(r *rand.Rand, st *study) {
	p := st.p
	n := 1 + r.IntN(3)
	kinds := [][]seriesKind{{kPETAC}, {kCT, kPETAC}, {kCT, kPETAC, kPETNAC}}[n-1]
	// One injection for the study, an hour before the first series.
	injected := 3.7e6 * p.weight * (0.9 + r.Float64()*0.2)
	injection := st.date.Add(-time.Duration(55+r.IntN(20)) * time.Minute)
	slices := c.slices(r, "PT")
	for i, k := range kinds {
		var se *series
		if k == kCT {
			se = c.baseSeries(r, st, "CT", kCT)
			se.description, se.kernel, se.window, se.windowName = "CT WB AC", "SOFT", [2]float64{40, 400}, "SOFT TISSUE"
			se.phase = ""
		} else {
			se = c.baseSeries(r, st, "PT", k)
			se.description = "PET WB AC"
			if k == kPETNAC {
				se.description = "PET WB NAC"
			}
			se.injected, se.injection = injected, injection
		}
		se.number = 2 + i
		se.protocol = "FDG WHOLE BODY ONCO"
		c.geometry(r, se)
		if k != kCT {
			se.slices = slices
			c.geometryZ(se)
		}
	}
	c.maybeName(r, st)
}

// geometryZ recomputes slice positions after the slice count changed.
func (c *cohort) geometryZ(se *series) {
	zr := bodyRange[se.bodyPart]
	se.dz = math.Round((zr[1]-zr[0])/float64(se.slices)*10) / 10
	se.zTop = zr[1] - se.dz/2
	se.thickness = se.dz
}

// maybeName puts the patient's name into one series description now and
// then.
func (c *cohort) maybeName(r *rand.Rand, st *study) {
	if r.IntN(8) != 0 || len(st.series) == 0 {
		return
	}
	se := st.series[r.IntN(len(st.series))]
	se.description = se.description + " " + st.p.name.PN()
	if i := strings.IndexByte(se.description, '='); i >= 0 {
		se.description = se.description[:i]
	}
	if len([]rune(se.description)) > 64 {
		se.description = string([]rune(se.description)[:64])
	}
}

// ensureRisky adds the risky objects: an ultrasound study for about one
// patient in twenty and a secondary capture for about one study in twenty,
// with at least one of each from RiskyFloor patients on.
func (c *cohort) ensureRisky(cr *rand.Rand) {
	var usDone, scDone bool
	for _, p := range c.patients {
		r := rand.New(rand.NewPCG(c.opts.Seed, 0x2000+uint64(p.index)))
		if r.IntN(20) == 0 {
			c.addUltrasound(r, p)
			usDone = true
		}
		for _, st := range append([]*study(nil), p.studies...) {
			if st.kind != studyUS && r.IntN(20) == 0 {
				c.addCapture(r, st)
				scDone = true
			}
		}
	}
	if len(c.patients) < RiskyFloor {
		return
	}
	if !usDone {
		p := c.patients[cr.IntN(len(c.patients))]
		c.addUltrasound(rand.New(rand.NewPCG(c.opts.Seed, 0x3000+uint64(p.index))), p)
	}
	if !scDone {
		p := c.patients[cr.IntN(len(c.patients))]
		st := p.studies[cr.IntN(len(p.studies))]
		if st.kind == studyUS {
			st = p.studies[0]
		}
		c.addCapture(rand.New(rand.NewPCG(c.opts.Seed, 0x4000+uint64(p.index))), st)
	}
}

var usBodyPart = map[string]string{
	"breast": "BREAST", "liver": "ABDOMEN", "pancreas": "ABDOMEN", "colorectal": "ABDOMEN",
	"prostate": "PROSTATE", "lung": "CHEST",
}

// addUltrasound appends an ultrasound study, dated between the diagnosis
// and the first imaging study.
func (c *cohort) addUltrasound(r *rand.Rand, p *patient) {
	first := p.studies[0].date
	st := &study{p: p, index: len(p.studies) + 1, kind: studyUS, bodyPart: usBodyPart[p.site.cancerType], lesionScale: 1}
	day := p.diagnosis.AddDate(0, 0, 1)
	if !day.Before(time.Date(first.Year(), first.Month(), first.Day(), 0, 0, 0, 0, time.UTC)) {
		day = time.Date(first.Year(), first.Month(), first.Day(), 0, 0, 0, 0, time.UTC)
	}
	st.date = day.Add(time.Duration(7*3600+r.IntN(3*3600)) * time.Second)
	c.fillStudy(r, st)
	st.contrast = false
	se := c.baseSeries(r, st, "US", kUS)
	se.number = 1
	se.description = "US " + st.bodyPart
	se.protocol = st.bodyPart
	se.rgb = r.IntN(2) == 0
	if c.opts.Size == SizeBench {
		se.cols, se.rows = 640, 480
	} else {
		se.cols, se.rows = 320, 240
	}
	se.slices = 2 + r.IntN(3)
	se.risky = RiskUltrasound
	p.studies = append(p.studies, st)
}

// addCapture appends a secondary capture series (a dose report or a
// screenshot) to a study.
func (c *cohort) addCapture(r *rand.Rand, st *study) {
	se := c.baseSeries(r, st, "OT", kSC)
	se.number = 999
	se.description = "PATIENT PROTOCOL"
	if st.kind != studyCT && st.kind != studyPET {
		se.description = "SCREEN CAPTURE"
		se.number = 501
	}
	se.protocol = ""
	if c.opts.Size == SizeBench {
		se.cols, se.rows = 512, 512
	} else {
		se.cols, se.rows = 256, 256
	}
	se.slices = 1
	se.risky = RiskSecondaryCapture
}
