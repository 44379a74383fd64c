package deid

import (
	"strings"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
)

// attributeType returns the Type (1, 2 or 3) of t in the IOD of the SOP
// class, where the engine knows it, or 0. Only attributes whose profile
// action depends on the Type are listed: enough for the IODs the
// federation sees (CT, MR, PET, US, SC, SR, RT and their enhanced forms).
func attributeType(sopClass string, enhanced bool, t dicom.Tag) int {
	if enhanced {
		// Enhanced multi-frame IODs (a Shared Functional Groups Sequence is
		// present): Multi-frame Functional Groups and Enhanced General
		// Equipment make these Type 1.
		switch t {
		case 0x00080023, 0x00080033, 0x0008002A, 0x00181000:
			return 1
		}
	}
	switch {
	case strings.HasPrefix(sopClass, "1.2.840.10008.5.1.4.1.1.9."): // waveforms
		switch t {
		case 0x00080023, 0x00080033, 0x0008002A: // Waveform Identification
			return 1
		}
	case strings.HasPrefix(sopClass, "1.2.840.10008.5.1.4.1.1.481."): // RT objects
		switch t {
		case 0x00081070: // Operators' Name (RT Series: Type 2)
			return 2
		}
	case strings.HasPrefix(sopClass, "1.2.840.10008.5.1.4.1.1.128"), strings.HasPrefix(sopClass, "1.2.840.10008.5.1.4.1.1.130"): // PET, enhanced PET
		switch t {
		case 0x00080021, 0x00080031: // Series Date and Time (PET Series: Type 1)
			return 1
		case 0x00080022, 0x00080032: // Acquisition Date and Time (PET Image: Type 2)
			return 2
		}
	case strings.HasPrefix(sopClass, "1.2.840.10008.5.1.4.1.1.88."): // structured reports
		switch t {
		case 0x00080023, 0x00080033, 0x0040A032: // Content Date, Content Time, Observation DateTime
			return 1
		case 0x0040A123: // Person Name of a PNAME content item
			return 1
		case 0x00081111: // Referenced Performed Procedure Step Sequence (SR Document Series: Type 2)
			return 2
		}
	case sopClass == "1.2.840.10008.5.1.4.1.1.2.1", sopClass == "1.2.840.10008.5.1.4.1.1.4.1", // enhanced CT, MR
		sopClass == "1.2.840.10008.5.1.4.1.1.4.3", sopClass == "1.2.840.10008.5.1.4.1.1.2.2":
		switch t {
		case 0x0008002A, 0x00080023, 0x00080033: // Acquisition DateTime, Content Date and Time
			return 1
		case 0x00181000: // Device Serial Number (Enhanced General Equipment)
			return 1
		}
	}
	switch t {
	case 0x00100010, 0x00100020, 0x00100030, 0x00100040, // patient name, ID, birth date, sex
		0x00080020, 0x00080030, 0x00080090, 0x00200010, 0x00080050, // study date, time, referring physician, study ID, accession
		0x00180010,             // Contrast/Bolus Agent
		0x00080023, 0x00080033, // Content Date and Time (General Image: Type 2C)
		0x00700084,             // Content Creator's Name
		0x300A00B2,             // Treatment Machine Name
		0x300A0006, 0x300A0007, // RT Plan Date and Time
		0x30060008, 0x30060009, // Structure Set Date and Time
		0x00081110: // Referenced Study Sequence (SR: Type 2)
		return 2
	}
	return 0
}
