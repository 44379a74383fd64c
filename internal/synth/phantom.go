package synth

import (
	"math"
	"math/rand/v2"
	"sync"
)

// tissue labels the regions of the phantom. Each modality maps a label to
// an intensity.
type tissue uint8

const (
	tAir tissue = iota
	tFat
	tSoft
	tLung
	tBone
	tLiver
	tKidney
	tSpleen
	tPancreas
	tBladder
	tProstate
	tBreast
	tVessel
	tHeart
	tBowel
	tCanal
	tLesion
	nTissues
)

// shape is an ellipsoid, or an elliptic cylinder when cyl is set, in
// patient coordinates (millimetres; x to the patient's left, y to the
// back, z to the head).
type shape struct {
	t          tissue
	cx, cy, cz float64
	rx, ry, rz float64
	cyl        bool    // elliptic cylinder between zlo and zhi
	zlo, zhi   float64 // cylinder extent
}

// phantom is a patient's anatomy: shapes painted in order, the later over
// the earlier, then the primary tumour.
type phantom struct {
	shapes []shape
	lesion shape // rx is the radius at the first study
	// a and b are the semi-axes of the body outline.
	a, b float64
}

// Body regions along z (mm); z = 0 is about the liver dome.
var bodyRange = map[string][2]float64{
	"CHEST":     {-40, 260},
	"ABDOMEN":   {-320, 30},
	"PELVIS":    {-450, -220},
	"BREAST":    {40, 220},
	"PROSTATE":  {-450, -365},
	"WHOLEBODY": {-470, 280},
}

const zTop, zBottom = 300.0, -500.0

// newPhantom draws a patient's anatomy and places the primary tumour
// where the topography code says (lobe, breast quadrant, side).
func newPhantom(r *rand.Rand, sex byte, weight, height float64, site *cancerSite, topo, laterality string, t int) *phantom {
	// Body outline grows with the body mass index.
	bmi := weight / (height * height)
	a := 120 + 2.4*bmi + r.Float64()*10
	b := a * (0.64 + r.Float64()*0.08)
	p := &phantom{a: a, b: b}
	add := func(s shape) { p.shapes = append(p.shapes, s) }
	cyl := func(t tissue, cx, cy, rx, ry, zlo, zhi float64) {
		add(shape{t: t, cx: cx, cy: cy, rx: rx, ry: ry, cyl: true, zlo: zlo, zhi: zhi})
	}
	ell := func(t tissue, cx, cy, cz, rx, ry, rz float64) {
		add(shape{t: t, cx: cx, cy: cy, cz: cz, rx: rx, ry: ry, rz: rz})
	}
	fat := 8 + bmi*0.45
	cyl(tFat, 0, 0, a, b, zBottom, zTop)
	cyl(tSoft, 0, 0, a-fat, b-fat, zBottom, zTop)
	if sex == 'F' {
		for _, sx := range []float64{-1, 1} {
			ell(tFat, sx*a*0.42, -b+4, 120, 58, 42, 55)
			ell(tBreast, sx*a*0.42, -b+2, 122, 36, 26, 36)
		}
	}
	lx := a * 0.45
	ell(tLung, -lx, -4, 125, a*0.31, b*0.62, 128)
	ell(tLung, lx, -4, 125, a*0.30, b*0.62, 125)
	ell(tHeart, 22, -b*0.25, 55, 55, 45, 55)
	ell(tLiver, -a*0.38, -b*0.08, -60, a*0.5, b*0.55, 85)
	ell(tSpleen, a*0.5, b*0.2, -55, 38, 32, 55)
	ell(tKidney, -70, b*0.42, -125, 28, 24, 55)
	ell(tKidney, 70, b*0.42, -120, 28, 24, 55)
	ell(tPancreas, 8, b*0.1, -100, 55, 13, 15)
	ell(tBowel, -40, -b*0.3, -200, 50, 35, 60)
	ell(tBowel, 45, -b*0.25, -190, 45, 35, 55)
	ell(tBowel, 45, b*0.05, -285, 22, 20, 45) // sigmoid colon
	ell(tBladder, 0, -b*0.35, -365, 45, 33, 35)
	ell(tBowel, 0, b*0.42, -390, 17, 17, 60) // rectum
	if sex == 'M' {
		ell(tProstate, 0, b*0.05, -408, 21, 17, 18)
	}
	cyl(tVessel, 16, b*0.32, 12, 12, -330, 150) // aorta
	cyl(tVessel, -20, b*0.3, 11, 11, -330, 120) // vena cava
	// Bones: spine, iliac wings, femoral heads, ribs as a thin arc is
	// left out to keep painting cheap.
	cyl(tBone, 0, b*0.62, 17, 15, zBottom, zTop)
	cyl(tCanal, 0, b*0.62+17, 7, 7, zBottom, zTop)
	for _, sx := range []float64{-1, 1} {
		ell(tBone, sx*a*0.62, b*0.3, -300, 18, 45, 55)
		ell(tBone, sx*a*0.55, 0, -425, 24, 24, 24)
	}

	// The primary tumour, inside its host organ.
	rad := lesionRadius(r, t)
	side := 1.0
	if laterality == "R" {
		side = -1
	}
	jitter := func(s float64) float64 { return (r.Float64()*2 - 1) * s }
	var c [3]float64
	switch site.host {
	case tBreast:
		// Upper quadrants sit higher; outer ones away from the midline.
		dx, dz := jitter(12), jitter(15)
		switch topo {
		case "C50.4":
			dx, dz = 14+jitter(5), 14+jitter(5)
		case "C50.2":
			dx, dz = -14+jitter(5), 14+jitter(5)
		}
		c = [3]float64{side * (a*0.42 + dx), -b + 2 + jitter(6), 122 + dz}
		rad = math.Min(rad, 24)
	case tLung:
		z := 130 + jitter(40)
		switch topo {
		case "C34.1":
			z = 185 + jitter(20)
		case "C34.3":
			z = 70 + jitter(20)
		}
		c = [3]float64{side*lx + jitter(a*0.1), -4 + jitter(b*0.25), z}
	case tLiver:
		c = [3]float64{-a*0.38 + jitter(a*0.15), -b*0.08 + jitter(b*0.2), -60 + jitter(35)}
	case tPancreas:
		c = [3]float64{-5 + jitter(10), b * 0.1, -100 + jitter(4)}
		rad = math.Min(rad, 20)
	case tProstate:
		c = [3]float64{jitter(8), b*0.05 + jitter(5), -408 + jitter(6)}
		rad = math.Min(rad, 14)
	case tBowel:
		c = [3]float64{45 + jitter(6), b*0.05 + jitter(6), -285 + jitter(25)}
		rad = math.Min(rad, 22)
	}
	p.lesion = shape{t: tLesion, cx: c[0], cy: c[1], cz: c[2], rx: rad, ry: rad, rz: rad}
	return p
}

// grid is the sampling of one image: pixel (i, j) sits at x0+i*dx,
// y0+j*dy on the plane z.
type grid struct {
	cols, rows int
	x0, y0     float64
	dx, dy     float64
}

// paint draws the cross-section of s at z into labels.
func (g *grid) paint(labels []tissue, s *shape, z float64) {
	rx, ry := s.rx, s.ry
	if s.cyl {
		if z < s.zlo || z > s.zhi {
			return
		}
	} else {
		dz := (z - s.cz) / s.rz
		k := 1 - dz*dz
		if k <= 0 {
			return
		}
		k = math.Sqrt(k)
		rx *= k
		ry *= k
	}
	j0 := int(math.Ceil((s.cy - ry - g.y0) / g.dy))
	j1 := int(math.Floor((s.cy + ry - g.y0) / g.dy))
	j0 = max(j0, 0)
	j1 = min(j1, g.rows-1)
	for j := j0; j <= j1; j++ {
		y := (g.y0 + float64(j)*g.dy - s.cy) / ry
		t := 1 - y*y
		if t <= 0 {
			continue
		}
		half := rx * math.Sqrt(t)
		i0 := int(math.Ceil((s.cx - half - g.x0) / g.dx))
		i1 := int(math.Floor((s.cx + half - g.x0) / g.dx))
		i0 = max(i0, 0)
		i1 = min(i1, g.cols-1)
		if i0 > i1 {
			continue
		}
		row := labels[j*g.cols+i0 : j*g.cols+i1+1]
		for i := range row {
			row[i] = s.t
		}
	}
}

// noise is a fixed table of standard normal deviates scaled by 256, shared
// by every image; images read it at offsets derived from their identity,
// so noise costs one table read per pixel. It is made on first use (a
// quarter of a million random draws, 150 kB), not when the binary starts.
var noise = sync.OnceValue(func() []int16 {
	const n = 1 << 16
	r := rand.New(rand.NewPCG(0x6d6f73616963, 0x6e6f697365))
	t := make([]int16, n+MaxCTMatrix*4)
	for i := range n {
		// Sum of four uniforms: close enough to normal, bounded.
		s := r.Float64() + r.Float64() + r.Float64() + r.Float64() - 2
		t[i] = int16(s * math.Sqrt(3) * 256)
	}
	copy(t[n:], t[:len(t)-n])
	return t
})

const noiseMask = 1<<16 - 1

// mix64 is a fixed bit mixer (a SplitMix64 step) for deriving offsets.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// lut maps tissues to stored pixel values with a noise level.
type lut struct {
	base  [nTissues]int32
	sigma [nTissues]int32 // noise standard deviation, in stored units
	lo    int32
	hi    int32
}

// renderer holds the scratch buffers of one worker.
type renderer struct {
	labels []tissue
	pix    []byte
}

func newRenderer() *renderer { return &renderer{} }

// render16 draws the phantom's slice at z into little-endian 16-bit
// pixels and returns them (valid until the next call).
func (r *renderer) render16(g *grid, ph *phantom, lesion shape, z float64, l *lut, key uint64) []byte {
	n := g.rows * g.cols
	if cap(r.labels) < n {
		r.labels = make([]tissue, n)
	}
	labels := r.labels[:n]
	clear(labels)
	for i := range ph.shapes {
		g.paint(labels, &ph.shapes[i], z)
	}
	g.paint(labels, &lesion, z)
	if cap(r.pix) < 2*n {
		r.pix = make([]byte, 2*n)
	}
	pix := r.pix[:2*n]
	h := key
	for j := range g.rows {
		h = mix64(h)
		off := int(h & noiseMask)
		nz := noise()[off : off+g.cols]
		row := labels[j*g.cols : (j+1)*g.cols]
		out := pix[2*j*g.cols : 2*(j+1)*g.cols]
		for i, t := range row {
			v := l.base[t] + (l.sigma[t]*int32(nz[i]))>>8
			if v < l.lo {
				v = l.lo
			} else if v > l.hi {
				v = l.hi
			}
			out[2*i] = byte(v)
			out[2*i+1] = byte(v >> 8)
		}
	}
	return pix
}
