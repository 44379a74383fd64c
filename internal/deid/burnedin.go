package deid

import (
	"slices"
	"strings"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
)

// pixelTextClasses are SOP classes whose pixels often carry text: the
// engine copies pixel data unchanged, so it cannot make them safe.
var pixelTextClasses = map[string]string{
	"1.2.840.10008.5.1.4.1.1.6.1":      "ultrasound",
	"1.2.840.10008.5.1.4.1.1.6.2":      "enhanced ultrasound volume",
	"1.2.840.10008.5.1.4.1.1.3.1":      "ultrasound multi-frame",
	"1.2.840.10008.5.1.4.1.1.6":        "ultrasound (retired)",
	"1.2.840.10008.5.1.4.1.1.3":        "ultrasound multi-frame (retired)",
	"1.2.840.10008.5.1.4.1.1.7":        "secondary capture",
	"1.2.840.10008.5.1.4.1.1.7.1":      "multi-frame single bit secondary capture",
	"1.2.840.10008.5.1.4.1.1.7.2":      "multi-frame grayscale byte secondary capture",
	"1.2.840.10008.5.1.4.1.1.7.3":      "multi-frame grayscale word secondary capture",
	"1.2.840.10008.5.1.4.1.1.7.4":      "multi-frame true color secondary capture",
	"1.2.840.10008.5.1.4.1.1.77.1.1":   "VL endoscopic image",
	"1.2.840.10008.5.1.4.1.1.77.1.1.1": "video endoscopic image",
	"1.2.840.10008.5.1.4.1.1.77.1.2":   "VL microscopic image",
	"1.2.840.10008.5.1.4.1.1.77.1.2.1": "video microscopic image",
	"1.2.840.10008.5.1.4.1.1.77.1.3":   "VL slide-coordinates microscopic image",
	"1.2.840.10008.5.1.4.1.1.77.1.4":   "VL photographic image",
	"1.2.840.10008.5.1.4.1.1.77.1.4.1": "video photographic image",
	"1.2.840.10008.5.1.4.1.1.77.1.5.1": "ophthalmic photography 8 bit",
	"1.2.840.10008.5.1.4.1.1.77.1.5.2": "ophthalmic photography 16 bit",
	"1.2.840.10008.5.1.4.1.1.77.1.5.4": "ophthalmic tomography",
	"1.2.840.10008.5.1.4.1.1.77.1.6":   "VL whole slide microscopy (label images)",
	"1.2.840.10008.5.1.4.1.1.104.1":    "encapsulated PDF",
	"1.2.840.10008.5.1.4.1.1.104.2":    "encapsulated CDA",
}

// pixelTextModalities are modalities whose images often carry text.
var pixelTextModalities = map[string]string{
	"US": "ultrasound", "ES": "endoscopy", "XC": "external camera photography", "GM": "general microscopy",
	"OP": "ophthalmic photography", "SC": "secondary capture", "DOC": "document", "IVUS": "intravascular ultrasound",
}

// checkPixelRisk rejects objects whose pixels may show identity: declared
// burned-in annotation or recognisable features, or a class or modality
// known to carry text, unless the policy allows the class.
func (e *Engine) checkPixelRisk(ds *dicom.Dataset, sopClass string) error {
	if v, _ := ds.String(tagBurnedInAnnotation); strings.EqualFold(v, "YES") {
		return reject("burned-in-annotation", "Burned In Annotation is YES: text in the pixels cannot be removed")
	}
	if v, _ := ds.String(tagRecognizableVisualFeatures); strings.EqualFold(v, "YES") {
		return reject("recognizable-features", "Recognizable Visual Features is YES")
	}
	if slices.Contains(e.p.AllowClasses, sopClass) {
		return nil
	}
	if what, ok := pixelTextClasses[sopClass]; ok {
		return reject("pixel-text-risk", "SOP class %s (%s) often has text in its pixels; allow it in the policy to accept it", sopClass, what)
	}
	if m, _ := ds.String(tagModality); m != "" {
		if what, ok := pixelTextModalities[strings.ToUpper(m)]; ok {
			return reject("pixel-text-risk", "modality %s (%s) often has text in its pixels; allow its SOP class in the policy to accept it", m, what)
		}
	}
	return nil
}
