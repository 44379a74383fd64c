package synth

import "math"

// CT attenuation in Hounsfield units without contrast.
var ctNative = [nTissues]float64{
	tAir: -1000, tFat: -100, tSoft: 45, tLung: -830, tBone: 750, tLiver: 58,
	tKidney: 32, tSpleen: 48, tPancreas: 42, tBladder: 8, tProstate: 40,
	tBreast: -20, tVessel: 42, tHeart: 42, tBowel: 25, tCanal: 12,
}

// Enhancement by contrast phase: the tissues that change.
var ctPhase = map[string]map[tissue]float64{
	"ARTERIAL": {tVessel: 300, tHeart: 250, tKidney: 180, tLiver: 75, tSpleen: 110, tPancreas: 110, tBowel: 40},
	"PORTAL":   {tVessel: 160, tHeart: 150, tKidney: 170, tLiver: 110, tSpleen: 115, tPancreas: 95, tBowel: 60},
	"DELAYED":  {tVessel: 100, tHeart: 90, tKidney: 120, tLiver: 85, tSpleen: 85, tPancreas: 70, tBowel: 50},
}

// ctLesion is the tumour's attenuation by host organ and phase ("" for
// native): a liver cancer enhances in the arterial phase and washes out
// later; a pancreatic cancer enhances less than the pancreas.
func ctLesion(host tissue, phase string) float64 {
	switch host {
	case tLiver:
		return map[string]float64{"": 40, "ARTERIAL": 135, "PORTAL": 80, "DELAYED": 60}[phase]
	case tPancreas:
		return map[string]float64{"": 35, "ARTERIAL": 60, "PORTAL": 55, "DELAYED": 50}[phase]
	case tLung:
		if phase != "" {
			return 55
		}
		return 35
	}
	if phase != "" {
		return 85
	}
	return 42
}

func ctLUT(site *cancerSite, phase string) *lut {
	l := &lut{lo: 0, hi: 4095}
	for t := range nTissues {
		hu := ctNative[t]
		if v, ok := ctPhase[phase][t]; ok {
			hu = v
		}
		if t == tLesion {
			hu = ctLesion(site.host, phase)
		}
		l.base[t] = int32(hu + 1024)
		l.sigma[t] = 12
	}
	l.sigma[tAir] = 4
	l.sigma[tLung] = 20
	return l
}

// MR signal by weighting, in stored units (12 bits).
var mrSignal = map[seriesKind][nTissues]float64{
	kMRT1: {
		tAir: 5, tFat: 1100, tSoft: 420, tLung: 25, tBone: 650, tLiver: 560, tKidney: 380, tSpleen: 400,
		tPancreas: 600, tBladder: 140, tProstate: 380, tBreast: 350, tVessel: 150, tHeart: 300, tBowel: 300, tCanal: 120,
	},
	kMRT1Post: {
		tAir: 5, tFat: 300, tSoft: 480, tLung: 25, tBone: 400, tLiver: 900, tKidney: 1200, tSpleen: 950,
		tPancreas: 800, tBladder: 140, tProstate: 600, tBreast: 500, tVessel: 1400, tHeart: 1100, tBowel: 700, tCanal: 120,
	},
	kMRT2: {
		tAir: 5, tFat: 850, tSoft: 300, tLung: 20, tBone: 450, tLiver: 260, tKidney: 700, tSpleen: 650,
		tPancreas: 450, tBladder: 1800, tProstate: 520, tBreast: 380, tVessel: 100, tHeart: 250, tBowel: 500, tCanal: 1500,
	},
	kMRDWI: {
		tAir: 3, tFat: 40, tSoft: 120, tLung: 5, tBone: 60, tLiver: 160, tKidney: 300, tSpleen: 350,
		tPancreas: 180, tBladder: 80, tProstate: 250, tBreast: 120, tVessel: 10, tHeart: 60, tBowel: 120, tCanal: 50,
	},
}

type mrTable struct {
	lut
	windowC, windowW int
}

func mrLesion(kind seriesKind, host tissue) float64 {
	switch kind {
	case kMRT1:
		return 300
	case kMRT2:
		if host == tProstate {
			return 230 // prostate cancer is dark on T2
		}
		return 780
	case kMRT1Post:
		if host == tPancreas {
			return 380
		}
		return 1250
	}
	return 950 // restricted diffusion
}

func mrLUT(kind seriesKind, site *cancerSite) *mrTable {
	sig := mrSignal[kind]
	l := &mrTable{}
	l.lo, l.hi = 0, 4095
	for t := range nTissues {
		v := sig[t]
		if t == tLesion {
			v = mrLesion(kind, site.host)
		}
		l.base[t] = int32(v)
		l.sigma[t] = int32(6 + v*0.04)
	}
	switch kind {
	case kMRT2:
		l.windowC, l.windowW = 700, 1600
	case kMRDWI:
		l.windowC, l.windowW = 400, 900
	default:
		l.windowC, l.windowW = 650, 1500
	}
	return l
}

// FDG uptake as standardised uptake values.
var petSUV = [nTissues]float64{
	tAir: 0, tFat: 0.35, tSoft: 0.7, tLung: 0.45, tBone: 1.1, tLiver: 2.3, tKidney: 3.5, tSpleen: 1.9,
	tPancreas: 1.4, tBladder: 22, tProstate: 1.5, tBreast: 0.7, tVessel: 1.7, tHeart: 3.0, tBowel: 1.5, tCanal: 0.8,
}

type petTable struct {
	lut
	slope            float64
	windowC, windowW float64
}

// petLUT maps tissues to stored values for an activity concentration of
// perSUV Bq/ml per unit of SUV. Images without attenuation correction
// lose signal in the body but not in the lungs.
func petLUT(site *cancerSite, nac bool, perSUV float64) *petTable {
	l := &petTable{}
	l.lo, l.hi = 0, 65535
	// Thirty SUV fills three quarters of the stored range.
	l.slope = float64(float32(30 * perSUV / 49152))
	l.slope = math.Round(l.slope*1e6) / 1e6
	for t := range nTissues {
		suv := petSUV[t]
		if t == tLesion {
			suv = site.lesionSUV
		}
		if nac && t != tLung && t != tAir {
			suv *= 0.6
		}
		v := suv * perSUV / l.slope
		l.base[t] = int32(v)
		l.sigma[t] = int32(0.18*v + 0.02*perSUV/l.slope)
	}
	l.windowC = math.Round(2.5 * perSUV)
	l.windowW = math.Round(5 * perSUV)
	return l
}
