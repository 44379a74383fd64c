package dicomweb

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"unicode/utf8"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
)

// FailureReason is a value of Failure Reason (0008,1197) in the Failed SOP
// Sequence of a STOW-RS response (PS3.18 Table I.2-2).
type FailureReason uint16

// Failure reasons of PS3.18 Table I.2-2.
const (
	// FailureProcessing: a general failure in processing (0110H).
	FailureProcessing FailureReason = 0x0110
	// FailureSOPClassNotSupported: the SOP Class is not stored (0122H).
	FailureSOPClassNotSupported FailureReason = 0x0122
	// FailureOutOfResources: refused, out of resources (A700H, first of
	// A7xx); also used for a part over the size limit.
	FailureOutOfResources FailureReason = 0xA700
	// FailureDataSetMismatch: the data set does not match its SOP Class
	// (A900H, first of A9xx).
	FailureDataSetMismatch FailureReason = 0xA900
	// FailureCannotUnderstand: the instance cannot be understood, such as
	// a part that is not DICOM (C000H, first of Cxxx).
	FailureCannotUnderstand FailureReason = 0xC000
	// FailureTransferSyntaxNotSupported: the transfer syntax is not
	// supported (C122H).
	FailureTransferSyntaxNotSupported FailureReason = 0xC122
	// FailureRefusedByPolicy is for an instance the node's policy refuses,
	// such as the de-identification door. PS3.18 has no code for it, so
	// it is C000H, the generic error, and the policy's reason goes in
	// FailedInstance.Detail.
	FailureRefusedByPolicy = FailureCannotUnderstand
)

// WarningReason is a value of Warning Reason (0008,1196) in the
// Referenced SOP Sequence of a STOW-RS response (PS3.18 Table I.2-1).
type WarningReason uint16

// Warning reasons of PS3.18 Table I.2-1.
const (
	// WarningCoercion: the server modified data elements (B000H). The
	// node's de-identification does exactly that.
	WarningCoercion WarningReason = 0xB000
	// WarningElementsDiscarded: the server discarded data elements
	// (B006H).
	WarningElementsDiscarded WarningReason = 0xB006
	// WarningDataSetMismatch: stored although the data set does not
	// match its SOP Class (B007H).
	WarningDataSetMismatch WarningReason = 0xB007
)

// Tags of the Store Instances Response Module (PS3.18 Table I.1-1) and of
// the node's private failure detail.
const (
	TagReferencedSOPClassUID    dicom.Tag = 0x00081150
	TagReferencedSOPInstanceUID dicom.Tag = 0x00081155
	TagRetrieveURL              dicom.Tag = 0x00081190
	TagWarningReason            dicom.Tag = 0x00081196
	TagFailureReason            dicom.Tag = 0x00081197
	TagFailedSOPSequence        dicom.Tag = 0x00081198
	TagReferencedSOPSequence    dicom.Tag = 0x00081199

	// TagPrivateCreator reserves the private block (0009,10xx) for
	// PrivateCreator in failed items; TagFailureDetail (LT) holds the
	// textual reason of a failure there, since the standard has no
	// attribute for one.
	TagPrivateCreator dicom.Tag = 0x00090010
	TagFailureDetail  dicom.Tag = 0x00091001
)

// PrivateCreator is the Private Creator value of the node's private block.
const PrivateCreator = "MOSAIC"

// maxDetailBytes is the longest LT value (PS3.5 6.2).
const maxDetailBytes = 10240

// StoredInstance is one item of the Referenced SOP Sequence: an instance
// that was stored.
type StoredInstance struct {
	// SOPClassUID and SOPInstanceUID become Referenced SOP Class UID
	// (0008,1150) and Referenced SOP Instance UID (0008,1155).
	SOPClassUID    string
	SOPInstanceUID string
	// RetrieveURL is the instance's WADO-RS URL; empty leaves the
	// attribute empty (it is Type 2).
	RetrieveURL string
	// Warning is zero when the instance was stored without a warning.
	Warning WarningReason
}

// FailedInstance is one item of the Failed SOP Sequence: an instance, or a
// part, that was not stored. The UIDs may be empty when the part could not
// be read far enough to find them.
type FailedInstance struct {
	// SOPClassUID and SOPInstanceUID become Referenced SOP Class UID
	// (0008,1150) and Referenced SOP Instance UID (0008,1155); empty
	// values leave those attributes empty.
	SOPClassUID    string
	SOPInstanceUID string
	// Reason becomes Failure Reason (0008,1197).
	Reason FailureReason
	// Detail is an optional sentence for people, written to the node's
	// private attribute (0009,1001). It must not hold patient data.
	Detail string
}

// StoreResponse builds the body of a STOW-RS response: the Store Instances
// Response Module of PS3.18 Annex I in the DICOM JSON model.
type StoreResponse struct {
	// RetrieveURL is the study's WADO-RS URL, the top-level Retrieve URL
	// (0008,1190); empty leaves the attribute empty (it is Type 2).
	RetrieveURL string
	// Stored and Failed become the Referenced SOP Sequence (0008,1199)
	// and the Failed SOP Sequence (0008,1198), in this order.
	Stored []StoredInstance
	Failed []FailedInstance
}

// AddStored records a stored instance.
func (r *StoreResponse) AddStored(sopClassUID, sopInstanceUID, retrieveURL string, warning WarningReason) {
	r.Stored = append(r.Stored, StoredInstance{sopClassUID, sopInstanceUID, retrieveURL, warning})
}

// AddFailed records an instance or part that was not stored.
func (r *StoreResponse) AddFailed(sopClassUID, sopInstanceUID string, reason FailureReason, detail string) {
	r.Failed = append(r.Failed, FailedInstance{sopClassUID, sopInstanceUID, reason, detail})
}

// Status returns the HTTP status of the response (PS3.18 Table 10.5.3-1):
// 200 when every instance was stored without warning; 202 when some were
// stored and others failed or were stored with warnings; 409 when none
// was stored but failures were recorded (the table's status for a
// well-formed request that stored nothing, whatever the mix of reasons);
// 400 when nothing was recorded at all. Failures of the request as a
// whole (malformed body, wrong media type) are not this builder's: answer
// them with StatusOf and ErrorJSON.
func (r *StoreResponse) Status() int {
	switch {
	case len(r.Stored) == 0 && len(r.Failed) == 0:
		return http.StatusBadRequest
	case len(r.Stored) == 0:
		return http.StatusConflict
	case len(r.Failed) > 0:
		return http.StatusAccepted
	}
	for _, s := range r.Stored {
		if s.Warning != 0 {
			return http.StatusAccepted
		}
	}
	return http.StatusOK
}

// jsonAttribute is one attribute of the DICOM JSON model (PS3.18 F.2).
type jsonAttribute struct {
	VR    string `json:"vr"`
	Value []any  `json:"Value,omitempty"`
}

type jsonDataset map[string]jsonAttribute

func (d jsonDataset) set(t dicom.Tag, vr string, values ...any) {
	d[t.Hex()] = jsonAttribute{VR: vr, Value: values}
}

// setString sets a one-valued string attribute, empty (no "Value") when s
// is empty.
func (d jsonDataset) setString(t dicom.Tag, vr, s string) {
	if s == "" {
		d.set(t, vr)
		return
	}
	d.set(t, vr, s)
}

// MarshalJSON returns JSON(), for encoding/json; note that json.Marshal
// then escapes "&", "<" and ">" in URLs as \u0026 and so on, which is
// equivalent JSON.
func (r *StoreResponse) MarshalJSON() ([]byte, error) { return r.JSON(), nil }

// JSON encodes the response in the DICOM JSON model: one object
// holding Retrieve URL (0008,1190), Failed SOP Sequence (0008,1198) when
// there are failures and Referenced SOP Sequence (0008,1199) when
// instances were stored, keys in ascending tag order. Items hold
// Referenced SOP Class UID (0008,1150) and Referenced SOP Instance UID
// (0008,1155), empty when unknown; stored items add Retrieve URL and, for
// warnings, Warning Reason (0008,1196); failed items add Failure Reason
// (0008,1197) and, with a Detail, the private creator (0009,0010) and
// failure detail (0009,1001). Send it with Content-Type
// application/dicom+json and the status from Status.
func (r *StoreResponse) JSON() []byte {
	top := jsonDataset{}
	top.setString(TagRetrieveURL, "UR", r.RetrieveURL)
	if len(r.Failed) > 0 {
		items := make([]any, len(r.Failed))
		for i, f := range r.Failed {
			it := jsonDataset{}
			it.setString(TagReferencedSOPClassUID, "UI", f.SOPClassUID)
			it.setString(TagReferencedSOPInstanceUID, "UI", f.SOPInstanceUID)
			it.set(TagFailureReason, "US", uint16(f.Reason))
			if f.Detail != "" {
				it.set(TagPrivateCreator, "LO", PrivateCreator)
				it.set(TagFailureDetail, "LT", truncateUTF8(f.Detail, maxDetailBytes))
			}
			items[i] = it
		}
		top.set(TagFailedSOPSequence, "SQ", items...)
	}
	if len(r.Stored) > 0 {
		items := make([]any, len(r.Stored))
		for i, s := range r.Stored {
			it := jsonDataset{}
			it.setString(TagReferencedSOPClassUID, "UI", s.SOPClassUID)
			it.setString(TagReferencedSOPInstanceUID, "UI", s.SOPInstanceUID)
			it.setString(TagRetrieveURL, "UR", s.RetrieveURL)
			if s.Warning != 0 {
				it.set(TagWarningReason, "US", uint16(s.Warning))
			}
			items[i] = it
		}
		top.set(TagReferencedSOPSequence, "SQ", items...)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // URLs keep their & as is
	if err := enc.Encode(top); err != nil {
		// Strings, uint16 and nested maps of them always encode.
		panic("dicomweb: encoding a store response: " + err.Error())
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// truncateUTF8 shortens s to at most n bytes without cutting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// FailureReasonFor maps an error met while receiving or reading one part
// to the Failure Reason to record for it: FailureOutOfResources for
// ErrPartTooLarge, FailureTransferSyntaxNotSupported for
// dicom.ErrUnknownSyntax, FailureCannotUnderstand for parts that are not
// application/dicom and for any other DICOM decoding error, and
// FailureProcessing for anything else.
func FailureReasonFor(err error) FailureReason {
	var de *dicom.Error
	switch {
	case errors.Is(err, ErrPartTooLarge):
		return FailureOutOfResources
	case errors.Is(err, dicom.ErrUnknownSyntax):
		return FailureTransferSyntaxNotSupported
	case errors.Is(err, ErrUnsupportedPartType), errors.Is(err, ErrInvalidPart), errors.As(err, &de):
		return FailureCannotUnderstand
	}
	return FailureProcessing
}
