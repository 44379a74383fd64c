package synth

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
)

// Private block written into every object, as scanners do.
const (
	PrivateCreator = "MOSAIC SYNTH VENDOR"
	privateGroup   = 0x0009
)

// Tags of the private block: the creator in slot 0x10 reserves
// (0009,10xx).
var (
	TagPrivateCreator   = dicom.NewTag(privateGroup, 0x0010)
	TagPrivatePatientID = dicom.NewTag(privateGroup, 0x1001) // LO, the patient ID again
	TagPrivateProtocol  = dicom.NewTag(privateGroup, 0x1002) // US, a harmless protocol revision
)

// builder sets attributes by keyword and keeps the first error.
type builder struct {
	ds  *dicom.Dataset
	err *error
}

func newBuilder(ds *dicom.Dataset) *builder {
	var err error
	return &builder{ds: ds, err: &err}
}

func (b *builder) fail(err error) {
	if *b.err == nil {
		*b.err = err
	}
}

func (b *builder) entry(kw string) (dicom.DictEntry, bool) {
	e, ok := dicom.LookupKeyword(kw)
	if !ok {
		b.fail(fmt.Errorf("no attribute %s in the dictionary", kw))
	}
	return e, ok
}

// str sets a text attribute; an empty value list gives an empty (type 2)
// element.
func (b *builder) str(kw string, v ...string) {
	e, ok := b.entry(kw)
	if !ok {
		return
	}
	if err := b.ds.SetStrings(e.Tag, e.VR, v...); err != nil {
		b.fail(fmt.Errorf("%s: %w", kw, err))
	}
}

func (b *builder) ints(kw string, v ...int64) {
	e, ok := b.entry(kw)
	if !ok {
		return
	}
	if err := b.ds.SetInts(e.Tag, e.VR, v...); err != nil {
		b.fail(fmt.Errorf("%s: %w", kw, err))
	}
}

func (b *builder) floats(kw string, v ...float64) {
	e, ok := b.entry(kw)
	if !ok {
		return
	}
	if err := b.ds.SetFloats(e.Tag, e.VR, v...); err != nil {
		b.fail(fmt.Errorf("%s: %w", kw, err))
	}
}

// items sets a sequence of n items and returns builders for them. The
// items are attached before they are filled so they inherit the
// character set of the enclosing dataset.
func (b *builder) items(kw string, n int) []*builder {
	e, ok := b.entry(kw)
	if !ok {
		return nil
	}
	its := make([]*dicom.Item, n)
	for i := range its {
		its[i] = dicom.NewItem()
	}
	b.ds.SetSequence(e.Tag, its...)
	out := make([]*builder, n)
	for i, it := range its {
		out[i] = &builder{ds: &it.Dataset, err: b.err}
	}
	return out
}

// code sets a one-item code sequence.
func (b *builder) code(kw, value, scheme, meaning string) *builder {
	it := b.items(kw, 1)
	if it == nil {
		return nil
	}
	it[0].str("CodeValue", value)
	it[0].str("CodingSchemeDesignator", scheme)
	it[0].str("CodeMeaning", meaning)
	return it[0]
}

func da(t time.Time) string { return t.Format("20060102") }
func tm(t time.Time) string { return t.Format("150405") }

// tmf formats a time with microseconds, as scanners write acquisition
// times.
func tmf(t time.Time) string { return t.Format("150405.000000") }

func dt(t time.Time) string { return t.Format("20060102150405.000000") }

// needsUTF8 reports whether any text of the instance is outside ASCII.
func needsUTF8(in *instance) bool {
	se, st := in.se, in.se.st
	p := st.p
	for _, s := range []string{
		p.name.PN(), p.address, p.inst.name, p.inst.dept, p.inst.address, p.issuer,
		st.referring.doctorPN(), st.referring.display(), st.description,
		se.description, se.performing.doctorPN(), se.operator.PN(),
	} {
		for i := 0; i < len(s); i++ {
			if s[i] >= 0x80 {
				return true
			}
		}
	}
	return false
}

func ageString(years int) string { return fmt.Sprintf("%03dY", years) }

// common sets the patient, study, series, equipment, SOP common and
// private attributes every object shares.
func (b *builder) common(in *instance) {
	se, st := in.se, in.se.st
	p := st.p
	if needsUTF8(in) {
		b.str("SpecificCharacterSet", "ISO_IR 192")
	}
	// SOP common.
	b.str("InstanceCreationDate", da(se.time))
	b.str("InstanceCreationTime", tm(se.time))
	b.str("SOPClassUID", se.sop)
	b.str("SOPInstanceUID", in.uid)

	// Patient.
	b.str("PatientName", p.name.PN())
	b.str("PatientID", p.id)
	b.str("IssuerOfPatientID", p.issuer)
	b.str("PatientBirthDate", da(p.birth))
	b.str("PatientSex", string(p.sex))
	if o := b.items("OtherPatientIDsSequence", 1); o != nil {
		o[0].str("PatientID", p.otherID)
		o[0].str("IssuerOfPatientID", p.otherIssuer)
		o[0].str("TypeOfPatientID", "TEXT")
	}
	b.str("PatientAddress", p.address)
	b.str("PatientTelephoneNumbers", p.phone)

	// Patient study.
	b.str("PatientAge", ageString(ageOn(p.birth, st.date)))
	b.floats("PatientSize", p.height)
	b.floats("PatientWeight", p.weight)

	// General study.
	b.str("StudyInstanceUID", st.uid)
	b.str("StudyDate", da(st.date))
	b.str("StudyTime", tm(st.date))
	b.str("ReferringPhysicianName", st.referring.doctorPN())
	if r := b.items("ReferringPhysicianIdentificationSequence", 1); r != nil {
		r[0].code("PersonIdentificationCodeSequence", st.refID, "99MOSAICSTAFF", st.referring.display())
		r[0].str("PersonAddress", p.inst.address)
		r[0].str("PersonTelephoneNumbers", p.inst.phone)
		r[0].str("InstitutionName", p.inst.name)
	}
	b.str("StudyID", st.studyID)
	b.str("AccessionNumber", st.accession)
	b.str("StudyDescription", st.description)

	// General series.
	b.str("Modality", se.modality)
	b.str("SeriesInstanceUID", se.uid)
	b.ints("SeriesNumber", int64(se.number))
	b.str("SeriesDate", da(se.time))
	b.str("SeriesTime", tm(se.time))
	b.str("SeriesDescription", se.description)
	if se.protocol != "" {
		b.str("ProtocolName", se.protocol)
	}
	b.str("BodyPartExamined", se.bodyPart)
	b.str("OperatorsName", se.operator.PN())
	if se.modality == "PT" || se.modality == "US" || st.kind == studyCT {
		b.str("PerformingPhysicianName", se.performing.doctorPN())
	}
	if r := b.items("RequestAttributesSequence", 1); r != nil {
		r[0].str("AccessionNumber", st.accession)
		r[0].str("RequestedProcedureDescription", studyDescriptions[st.kind][st.bodyPart][0])
		r[0].str("RequestedProcedureID", st.reqProcID)
		r[0].str("ScheduledProcedureStepDescription", studyDescriptions[st.kind][st.bodyPart][0])
		r[0].str("ScheduledProcedureStepID", st.spsID)
	}

	// General equipment.
	b.str("Manufacturer", se.eq.manufacturer)
	b.str("InstitutionName", p.inst.name)
	b.str("InstitutionAddress", p.inst.address)
	b.str("StationName", se.eq.station)
	b.str("InstitutionalDepartmentName", p.inst.dept)
	b.str("ManufacturerModelName", se.eq.model)
	b.str("DeviceSerialNumber", se.eq.serial)
	b.str("SoftwareVersions", se.eq.software)

	// General image.
	b.ints("InstanceNumber", int64(in.index))
	if se.bodyPart == "BREAST" {
		// A paired organ: an ultrasound image shows one side, the
		// cross-sectional images and captures both.
		lat := "B"
		if se.modality == "US" && p.laterality != "" {
			lat = p.laterality
		}
		b.str("ImageLaterality", lat)
	}

	// The vendor's private block.
	if err := b.ds.SetStrings(TagPrivateCreator, dicom.LO, PrivateCreator); err != nil {
		b.fail(err)
	}
	if err := b.ds.SetStrings(TagPrivatePatientID, dicom.LO, p.id); err != nil {
		b.fail(err)
	}
	if err := b.ds.SetInts(TagPrivateProtocol, dicom.US, int64(3+se.number%5)); err != nil {
		b.fail(err)
	}
}

// plane sets the frame of reference and image plane of an axial slice.
func (b *builder) plane(in *instance, z float64) *grid {
	se := in.se
	dx := se.fov / float64(se.cols)
	x0 := se.cx - se.fov/2 + dx/2
	y0 := se.cy - se.fov/2 + dx/2
	b.str("FrameOfReferenceUID", se.st.forUID)
	b.str("PositionReferenceIndicator")
	b.floats("PixelSpacing", round4(dx), round4(dx))
	b.floats("ImageOrientationPatient", 1, 0, 0, 0, 1, 0)
	b.floats("ImagePositionPatient", round4(x0), round4(y0), round4(z))
	b.floats("SliceThickness", se.thickness)
	b.floats("SliceLocation", round4(z))
	// The pixels are computed on the very positions written above.
	return &grid{cols: se.cols, rows: se.rows, x0: round4(x0), y0: round4(y0), dx: round4(dx), dy: round4(dx)}
}

func round4(v float64) float64 { return math.Round(v*1e4) / 1e4 }

// pixels16 sets the image pixel module of a 16-bit monochrome image.
func (b *builder) pixels16(rows, cols, stored int, pix []byte) {
	b.ints("SamplesPerPixel", 1)
	b.str("PhotometricInterpretation", "MONOCHROME2")
	b.ints("Rows", int64(rows))
	b.ints("Columns", int64(cols))
	b.ints("BitsAllocated", 16)
	b.ints("BitsStored", int64(stored))
	b.ints("HighBit", int64(stored-1))
	b.ints("PixelRepresentation", 0)
	b.ds.SetBytes(dicom.TagPixelData, dicom.OW, pix)
}

func (b *builder) window(center, width float64, name string) {
	b.floats("WindowCenter", center)
	b.floats("WindowWidth", width)
	b.str("WindowCenterWidthExplanation", name)
}

// sliceZ is the table position of slice index i (0-based).
func (se *series) sliceZ(i int) float64 { return round4(se.zTop - float64(i)*se.dz) }

// buildInstance fills f with the complete object for in.
func buildInstance(f *dicom.File, r *renderer, in *instance) error {
	b := newBuilder(&f.Dataset)
	b.common(in)
	switch in.se.kind {
	case kCT:
		b.ct(r, in)
	case kMRT1, kMRT2, kMRT1Post, kMRDWI:
		b.mr(r, in)
	case kPETAC, kPETNAC:
		b.pet(r, in)
	case kUS:
		b.us(r, in)
	case kSC:
		b.sc(r, in)
	}
	return *b.err
}

func (se *series) acquisition(i int, step time.Duration) time.Time {
	return se.time.Add(20*time.Second + time.Duration(i)*step)
}

func (b *builder) ct(r *renderer, in *instance) {
	se, st := in.se, in.se.st
	i := in.index - 1
	z := se.sliceZ(i)
	acq := se.acquisition(i, 350*time.Millisecond)
	b.str("ImageType", "ORIGINAL", "PRIMARY", "AXIAL")
	b.str("AcquisitionDate", da(acq))
	b.str("AcquisitionTime", tmf(acq))
	b.str("ContentDate", da(acq))
	b.str("ContentTime", tmf(acq))
	b.ints("AcquisitionNumber", 1)
	b.str("PatientPosition", "HFS")
	if se.phase != "" {
		b.str("ContrastBolusAgent", "IOMEPROL 350")
		b.str("ContrastBolusRoute", "IV")
		b.floats("ContrastBolusVolume", 90)
	}
	b.floats("KVP", 120)
	b.floats("DataCollectionDiameter", 500)
	b.floats("ReconstructionDiameter", se.fov)
	b.floats("GantryDetectorTilt", 0)
	b.floats("TableHeight", 160)
	b.str("RotationDirection", "CW")
	b.ints("ExposureTime", 500)
	b.ints("XRayTubeCurrent", 180+int64(in.index%7)*5)
	b.ints("Exposure", 90)
	b.str("FilterType", "BODY FILTER")
	b.str("ConvolutionKernel", se.kernel)
	b.floats("SpiralPitchFactor", 0.984)
	b.floats("CTDIvol", 8.4)
	b.code("CTDIPhantomTypeCodeSequence", "113691", "DCM", "IEC Body Dosimetry Phantom")
	b.str("BurnedInAnnotation", "NO")
	b.floats("RescaleIntercept", -1024)
	b.floats("RescaleSlope", 1)
	b.str("RescaleType", "HU")
	b.window(se.window[0], se.window[1], se.windowName)
	g := b.plane(in, z)
	l := ctLUT(st.p.site, se.phase)
	pix := r.render16(g, st.p.ph, lesionAt(st), z, l, instanceKey(in))
	b.pixels16(se.rows, se.cols, 12, pix)
}

// lesionAt returns the primary tumour as it is at the time of a study.
func lesionAt(st *study) shape {
	l := st.p.ph.lesion
	l.rx *= st.lesionScale
	l.ry *= st.lesionScale
	l.rz *= st.lesionScale
	return l
}

func instanceKey(in *instance) uint64 {
	se, st := in.se, in.se.st
	return mix64(st.p.c.opts.Seed ^ mix64(uint64(st.p.index)<<40|uint64(st.index)<<32|uint64(se.index)<<24|uint64(in.index)))
}

// mrParams are the acquisition parameters written for each weighting.
type mrParams struct {
	scanning, variant, options []string
	acq                        string
	tr, te, ti, flip           float64
	etl                        int
	name                       string
}

var mrParamsByKind = map[seriesKind]mrParams{
	kMRT1:     {scanning: []string{"GR"}, variant: []string{"SP", "SS"}, options: []string{"FS"}, acq: "3D", tr: 4.5, te: 2.1, flip: 10, etl: 1, name: "*fl3d1"},
	kMRT1Post: {scanning: []string{"GR"}, variant: []string{"SP", "SS"}, options: []string{"FS"}, acq: "3D", tr: 4.5, te: 2.1, flip: 10, etl: 1, name: "*fl3d1_post"},
	kMRT2:     {scanning: []string{"SE"}, variant: []string{"SK", "SP"}, acq: "2D", tr: 4200, te: 98, flip: 150, etl: 17, name: "*tse2d1_17"},
	kMRDWI:    {scanning: []string{"EP"}, variant: []string{"SK", "SP"}, options: []string{"FS"}, acq: "2D", tr: 5200, te: 62, flip: 90, etl: 1, name: "*ep_b800t"},
}

func (b *builder) mr(r *renderer, in *instance) {
	se, st := in.se, in.se.st
	i := in.index - 1
	z := se.sliceZ(i)
	acq := se.acquisition(i, 0)
	prm := mrParamsByKind[se.kind]
	b.str("ImageType", "ORIGINAL", "PRIMARY", "OTHER")
	b.str("AcquisitionDate", da(acq))
	b.str("AcquisitionTime", tmf(acq))
	b.str("ContentDate", da(acq))
	b.str("ContentTime", tmf(acq.Add(time.Duration(i)*time.Millisecond)))
	b.ints("AcquisitionNumber", 1)
	b.str("PatientPosition", "HFS")
	if se.kind == kMRT1Post {
		b.str("ContrastBolusAgent", "GADOBUTROL 1.0 MMOL/ML")
		b.str("ContrastBolusRoute", "IV")
	}
	b.str("ScanningSequence", prm.scanning...)
	b.str("SequenceVariant", prm.variant...)
	b.str("ScanOptions", prm.options...)
	b.str("MRAcquisitionType", prm.acq)
	b.str("SequenceName", prm.name)
	b.floats("RepetitionTime", prm.tr)
	b.floats("EchoTime", prm.te)
	b.ints("EchoTrainLength", int64(prm.etl))
	b.floats("FlipAngle", prm.flip)
	b.floats("NumberOfAverages", 1)
	b.floats("ImagingFrequency", 123.25)
	b.str("ImagedNucleus", "1H")
	b.ints("EchoNumbers", 1)
	b.floats("MagneticFieldStrength", 3)
	b.floats("SpacingBetweenSlices", se.dz)
	b.floats("PixelBandwidth", 250)
	b.str("ReceiveCoilName", "BODY18")
	b.str("TransmitCoilName", "Body")
	b.ints("AcquisitionMatrix", 0, int64(se.cols), int64(se.rows), 0)
	b.str("InPlanePhaseEncodingDirection", "ROW")
	b.str("BurnedInAnnotation", "NO")
	l := mrLUT(se.kind, st.p.site)
	b.window(float64(l.windowC), float64(l.windowW), "MR")
	g := b.plane(in, z)
	pix := r.render16(g, st.p.ph, lesionAt(st), z, &l.lut, instanceKey(in))
	b.pixels16(se.rows, se.cols, 12, pix)
}

// F-18 physical constants.
const (
	f18HalfLife         = 6586.2 // s
	f18PositronFraction = 0.9673
	petBedSeconds       = 120
	petSlicesPerBed     = 8
)

func (b *builder) pet(r *renderer, in *instance) {
	se, st := in.se, in.se.st
	p := st.p
	i := in.index - 1
	z := se.sliceZ(i)
	start := se.time.Add(20 * time.Second)
	bed := i / petSlicesPerBed
	frameStart := time.Duration(bed*petBedSeconds) * time.Second
	acq := start.Add(frameStart)
	b.str("ImageType", "ORIGINAL", "PRIMARY")
	b.str("AcquisitionDate", da(acq))
	b.str("AcquisitionTime", tmf(acq))
	b.str("ContentDate", da(acq))
	b.str("ContentTime", tmf(acq))

	// PET series.
	b.str("Units", "BQML")
	b.str("CountsSource", "EMISSION")
	b.str("SeriesType", "WHOLE BODY", "IMAGE")
	b.ints("NumberOfSlices", int64(se.slices))
	if se.kind == kPETAC {
		b.str("CorrectedImage", "NORM", "DTIM", "ATTN", "SCAT", "DECY", "RAN")
		b.str("AttenuationCorrectionMethod", "CT-based")
		b.str("ScatterCorrectionMethod", "Model-based")
	} else {
		b.str("CorrectedImage", "NORM", "DTIM", "DECY", "RAN")
	}
	b.str("RandomsCorrectionMethod", "DLYD")
	b.str("DecayCorrection", "START")
	b.str("ReconstructionMethod", "OSEM 3I21S")
	b.floats("ReconstructionDiameter", se.fov)
	b.str("ConvolutionKernel", "GAUSSIAN 5.0")
	b.str("CollimatorType", "NONE")
	b.floats("AxialAcceptance", 27)

	// PET isotope.
	if ri := b.items("RadiopharmaceuticalInformationSequence", 1); ri != nil {
		it := ri[0]
		it.str("RadiopharmaceuticalRoute", "Intravenous")
		it.str("Radiopharmaceutical", "Fluorodeoxyglucose")
		it.str("RadiopharmaceuticalStartTime", tm(se.injection))
		it.str("RadiopharmaceuticalStartDateTime", dt(se.injection))
		it.floats("RadionuclideTotalDose", math.Round(se.injected))
		it.floats("RadionuclideHalfLife", f18HalfLife)
		it.floats("RadionuclidePositronFraction", f18PositronFraction)
		it.code("RadionuclideCodeSequence", "77004003", "SCT", "^18^Fluorine")
		it.code("RadiopharmaceuticalCodeSequence", "35321007", "SCT", "Fluorodeoxyglucose F^18^")
	}
	// NM/PET patient orientation.
	if po := b.code("PatientOrientationCodeSequence", "102538003", "SCT", "recumbent"); po != nil {
		po.code("PatientOrientationModifierCodeSequence", "40199007", "SCT", "supine")
	}
	b.code("PatientGantryRelationshipCodeSequence", "102540008", "SCT", "headfirst")

	// PET image.
	b.floats("FrameReferenceTime", float64(frameStart.Milliseconds())+petBedSeconds*500)
	b.ints("ImageIndex", int64(in.index))
	b.ints("ActualFrameDuration", petBedSeconds*1000)
	b.floats("DecayFactor", round4(math.Exp2(frameStart.Seconds()/f18HalfLife)))
	b.floats("DoseCalibrationFactor", 1)
	b.str("BurnedInAnnotation", "NO")

	// Activity concentration at the series start: SUV 1 is the decayed
	// dose spread evenly over the body.
	decayed := se.injected * math.Exp2(-start.Sub(se.injection).Seconds()/f18HalfLife)
	perSUV := decayed / (p.weight * 1000)
	l := petLUT(p.site, se.kind == kPETNAC, perSUV)
	b.floats("RescaleIntercept", 0)
	b.floats("RescaleSlope", l.slope)
	b.window(l.windowC, l.windowW, "PET")
	g := b.plane(in, z)
	pix := r.render16(g, p.ph, lesionAt(st), z, &l.lut, instanceKey(in))
	b.pixels16(se.rows, se.cols, 16, pix)
}

// usImageType3 is value 3 of Image Type for ultrasound by body part.
var usImageType3 = map[string]string{
	"BREAST": "BREAST", "ABDOMEN": "ABDOMINAL", "PROSTATE": "ENDORECTAL", "CHEST": "CHEST",
}

func (b *builder) us(r *renderer, in *instance) {
	se := in.se
	acq := se.acquisition(in.index-1, 17*time.Second)
	b.str("ImageType", "ORIGINAL", "PRIMARY", usImageType3[se.bodyPart], "0001")
	b.str("AcquisitionDateTime", dt(acq))
	b.str("ContentDate", da(acq))
	b.str("ContentTime", tm(acq))
	b.str("PatientOrientation")
	b.str("BurnedInAnnotation", "YES")
	b.str("LossyImageCompression", "00")
	b.str("ProcessingFunction", "GENERAL")
	pix := r.renderUS(in)
	spp := 1
	photo := "MONOCHROME2"
	if se.rgb {
		spp, photo = 3, "RGB"
	}
	b.ints("SamplesPerPixel", int64(spp))
	b.str("PhotometricInterpretation", photo)
	if se.rgb {
		b.ints("PlanarConfiguration", 0)
	}
	b.ints("Rows", int64(se.rows))
	b.ints("Columns", int64(se.cols))
	b.ints("BitsAllocated", 8)
	b.ints("BitsStored", 8)
	b.ints("HighBit", 7)
	b.ints("PixelRepresentation", 0)
	b.ds.SetBytes(dicom.TagPixelData, dicom.OB, pix)
}

func (b *builder) sc(r *renderer, in *instance) {
	se := in.se
	t := se.time.Add(5 * time.Minute)
	b.str("ImageType", "DERIVED", "SECONDARY")
	b.str("ContentDate", da(t))
	b.str("ContentTime", tm(t))
	b.str("PatientOrientation")
	b.str("ConversionType", "WSD")
	b.str("DateOfSecondaryCapture", da(t))
	b.str("TimeOfSecondaryCapture", tm(t))
	b.str("SecondaryCaptureDeviceManufacturer", se.eq.manufacturer)
	b.str("SecondaryCaptureDeviceManufacturerModelName", se.eq.model)
	b.str("SecondaryCaptureDeviceSoftwareVersions", se.eq.software)
	b.str("BurnedInAnnotation", "YES")
	pix := r.renderSC(in)
	b.ints("SamplesPerPixel", 1)
	b.str("PhotometricInterpretation", "MONOCHROME2")
	b.ints("Rows", int64(se.rows))
	b.ints("Columns", int64(se.cols))
	b.ints("BitsAllocated", 8)
	b.ints("BitsStored", 8)
	b.ints("HighBit", 7)
	b.ints("PixelRepresentation", 0)
	b.ds.SetBytes(dicom.TagPixelData, dicom.OB, pix)
}

// upperASCII folds text for the built-in font: upper case, accents
// dropped, anything else the font lacks shown as '?'.
func upperASCII(s string) string {
	var sb strings.Builder
	for _, c := range strings.ToUpper(s) {
		switch {
		case c == 'ß' || c == 'ẞ':
			sb.WriteString("SS")
		case c == 'Æ':
			sb.WriteString("AE")
		case c == 'Œ':
			sb.WriteString("OE")
		case c < 0x80:
			sb.WriteRune(c)
		default:
			if f, ok := fold[c]; ok {
				sb.WriteByte(f)
			} else {
				sb.WriteByte('?')
			}
		}
	}
	return sb.String()
}

var fold = func() map[rune]byte {
	m := map[rune]byte{}
	for base, list := range map[byte]string{
		'A': "ÀÁÂÃÄÅĀĂĄ", 'C': "ÇĆČ", 'D': "ĎĐ", 'E': "ÈÉÊËĒĖĘĚ", 'G': "ĞĢ",
		'I': "ÌÍÎÏĪĮİ", 'K': "Ķ", 'L': "ĹĻĽŁ", 'N': "ÑŃŅŇ", 'O': "ÒÓÔÕÖØŌŐ",
		'R': "ŔŘ", 'S': "ŚŞŠȘ", 'T': "ŢŤȚ", 'U': "ÙÚÛÜŪŮŰŲ", 'Y': "ÝŸ", 'Z': "ŹŻŽ",
	} {
		for _, c := range list {
			m[c] = base
		}
	}
	return m
}()
