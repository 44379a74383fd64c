package synth

import (
	"fmt"
	"math"
	"strings"
)

// burnedName is the patient's name as scanners print it on screen.
func burnedName(p *patient) string {
	n := p.name.family + ", " + p.name.given
	return upperASCII(n)
}

func (r *renderer) canvas(in *instance, spp int) *canvas {
	se := in.se
	n := se.rows * se.cols * spp
	if cap(r.pix) < n {
		r.pix = make([]byte, n)
	}
	pix := r.pix[:n]
	clear(pix)
	return &canvas{pix: pix, width: se.cols, height: se.rows, spp: spp}
}

// renderUS draws a sector scan with speckle, a dark lesion and the
// patient's details burned in at the top, as ultrasound machines do.
func (r *renderer) renderUS(in *instance) []byte {
	se, st := in.se, in.se.st
	p := st.p
	spp := 1
	if se.rgb {
		spp = 3
	}
	c := r.canvas(in, spp)
	w, h := se.cols, se.rows
	apexX, apexY := float64(w)/2, float64(h)*0.12
	r1 := float64(h) * 0.85
	tan := math.Tan(35 * math.Pi / 180)
	// The lesion moves a little from image to image.
	lx := apexX + float64((in.index%3)-1)*float64(w)*0.05
	ly := apexY + r1*0.5
	lrx, lry := float64(w)*0.09, float64(h)*0.07
	key := instanceKey(in)
	for y := int(apexY); y < h; y++ {
		dy := float64(y) - apexY
		if dy > r1 {
			break
		}
		half := math.Min(dy*tan, math.Sqrt(r1*r1-dy*dy))
		x0 := max(int(apexX-half), 0)
		x1 := min(int(apexX+half), w-1)
		key = mix64(key)
		off := int(key & noiseMask)
		nz := noise()[off : off+w]
		// Gain falls with depth; a bright fascia line sits near the top.
		base := 110 - 50*dy/r1
		if math.Abs(dy-r1*0.18) < 2 {
			base = 200
		}
		ty := (float64(y) - ly) / lry
		for x := x0; x <= x1; x++ {
			v := base
			if ty*ty < 1 {
				tx := (float64(x) - lx) / lrx
				if tx*tx+ty*ty < 1 {
					v = 25
				}
			}
			s := int(nz[x])
			if s < 0 {
				s = -s
			}
			v *= 0.45 + float64(s)/256*0.55
			b := byte(math.Min(v, 255))
			c.set(x, y, [3]byte{b, b, b})
		}
	}
	scale := max(1, w/320)
	col := [3]byte{230, 230, 230}
	if se.rgb {
		col = [3]byte{255, 226, 110}
	}
	lh := glyphH * scale
	lines := []string{
		p.inst.name,
		burnedName(p),
		"ID " + p.id + "  DOB " + p.birth.Format("2006-01-02"),
		se.time.Format("2006-01-02 15:04:05"),
	}
	for i, s := range lines {
		c.text(4*scale, 3*scale+i*lh, scale, s, col)
	}
	right := "MI 1.1 TIS 0.4"
	c.text(w-(len(right)+1)*glyphW*scale, 3*scale, scale, right, col)
	probe := "L12-5 " + se.bodyPart
	if p.laterality != "" && se.bodyPart == "BREAST" {
		probe += map[string]string{"L": " LEFT", "R": " RIGHT"}[p.laterality]
	}
	c.text(4*scale, h-lh, scale, probe, col)
	return c.pix
}

// renderSC draws a dose report or a screen capture: text only, with the
// patient's details, as scanners save them.
func (r *renderer) renderSC(in *instance) []byte {
	se, st := in.se, in.se.st
	p := st.p
	c := r.canvas(in, 1)
	scale := max(1, se.cols/256)
	lh := glyphH * scale
	white := [3]byte{235, 235, 235}
	grey := [3]byte{160, 160, 160}
	lines := []string{
		"PATIENT NAME: " + burnedName(p),
		"PATIENT ID:   " + p.id,
		"BIRTH DATE:   " + p.birth.Format("2006-01-02") + "  SEX " + string(p.sex),
		"ACCESSION:    " + st.accession,
		"STUDY DATE:   " + st.date.Format("2006-01-02 15:04"),
		"",
	}
	title := "DOSE REPORT"
	if se.description == "SCREEN CAPTURE" {
		title = "KEY IMAGES"
	}
	if title == "DOSE REPORT" {
		lines = append(lines, "SERIES   KV   CTDIVOL   DLP")
		total := 0.0
		for _, o := range st.series {
			if o.modality != "CT" {
				continue
			}
			length := float64(o.slices) * o.dz / 10
			dlp := 8.4 * length
			total += dlp
			lines = append(lines, fmt.Sprintf("%-8d 120  8.40      %.1f", o.number, dlp))
		}
		lines = append(lines, "", fmt.Sprintf("TOTAL DLP: %.1f MGY*CM", total))
	} else {
		lines = append(lines, strings.ToUpper(st.description))
	}
	c.text(6*scale, 6*scale, scale, upperASCII(p.inst.name), grey)
	c.text(6*scale, 6*scale+lh, scale, title, white)
	for i, s := range lines {
		c.text(6*scale, 6*scale+(i+3)*lh, scale, s, white)
	}
	return c.pix
}
