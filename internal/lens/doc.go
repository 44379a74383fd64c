// Package lens reads the federated search queries of Samply Lens, the
// search front end of EUCAIM's Explorer, and turns them into a validated,
// normalised boolean tree that a node can compile to its own storage. It
// is pure Go: no SQL, no HTTP.
//
// # Input forms
//
// Parse accepts the three shapes a query reaches a node in:
//
//   - the Explorer's query object: {"ast": NODE, "id": "..."};
//   - the envelope the UI posts: {"lang": "ast", "query": "<base64>"}, where
//     the base64 text (standard or URL-safe alphabet, padded or not, line
//     breaks ignored) holds either of the other two forms; an envelope
//     inside an envelope is refused;
//   - a bare NODE.
//
// A NODE is an operator {"operand": "AND"|"OR"|"NOT", "children": [NODE...]}
// or a condition {"key": K, "type": T, "system": S, "value": V}. Extra
// members that Lens adds (nodeType, a key on a branch) are ignored; when a
// member appears twice the last one wins.
//
// An AND or OR without children matches every patient: Lens sends
// {"operand":"OR","children":[]} when no criterion is selected. Lens itself
// has no NOT; Mosaic adds it with exactly one child. NOT with several
// children is refused rather than read as NOT(AND(...)) or NOT(OR(...)):
// both readings are plausible, and guessing would give silently wrong counts.
//
// # Keys and values
//
// The keys are those of EUCAIM's catalogue (samply/eucaim-frontend
// static/catalogues/catalogue-eucaim.json); codes are accepted with or
// without their SNOMEDCT prefix and in any letter case.
//
//	key                 attribute          types
//	SNOMEDCT263495000   gender             EQUALS, NOT_EQUALS, IN
//	SNOMEDCT423493009   age at diagnosis   EQUALS, NOT_EQUALS, BETWEEN, LOWER_THAN, GREATER_THAN
//	SNOMEDCT439401001   diagnosis          EQUALS, NOT_EQUALS, IN
//	SNOMEDCT432213005   year of diagnosis  EQUALS, NOT_EQUALS, BETWEEN, LOWER_THAN, GREATER_THAN
//	RID10311            imaging modality   EQUALS, NOT_EQUALS, IN
//	SNOMEDCT123037004   body part          EQUALS, NOT_EQUALS, IN
//	C25392              manufacturer       EQUALS, NOT_EQUALS, IN, CONTAINS
//
// Gender: SNOMED CT 248153007 male, 248152002 female, 74964007 other,
// 261665006 unknown; the words female, male, other, unknown and the DICOM
// letters F, M, O are accepted too.
//
// Age and year of diagnosis are whole years. Values must be JSON numbers;
// bounds are turned into inclusive whole-year ranges: GREATER_THAN 50 is
// 51 and up, LOWER_THAN 70 is up to 69, BETWEEN rounds its bounds inwards
// (49.5..70.2 is 50..70). BETWEEN takes {"min": a, "max": b} where either
// may be missing or null; following Lens's own rendering ("≥ a" when the
// upper field is 0 or empty), a max of 0 with a positive min leaves the
// range open above. EQUALS and NOT_EQUALS need a whole number.
//
// Diagnosis is matched on the ICD-10 code of the patient's cancer
// condition, by code prefix (dots ignored), and only when a condition has
// no ICD-10 code, on its cancer type:
//
//	SNOMED CT    label            ICD-10 prefixes                     cancer types
//	363406005    colon cancer     C18, C19, C20                       colorectal
//	254837009    breast cancer    C50                                 breast
//	363358000    lung cancer      C34                                 lung
//	363484005    pelvis cancer    C19-C21, C51-C58, C61, C67, C68     prostate, bladder, cervix, ovary
//	399068003    prostate cancer  C61                                 prostate
//	93870000     liver cancer     C22                                 liver
//	363418001    pancreas cancer  C25                                 pancreas
//
// The catalogue's "colon cancer" is EUCAIM's colorectal use case, so it
// takes the rectosigmoid junction and the rectum too (the node's cancer type
// colorectal). "Pelvis cancer" is read as a tumour of an organ of the true
// pelvis: rectosigmoid, rectum and anus, the female genital organs, the
// prostate, the bladder and other urinary organs (urethra); not the kidney
// or the renal pelvis (C64, C65), which despite the name lie in the abdomen,
// nor the external male genital organs. The node's own cancer type words
// (breast, lung, prostate, colorectal, liver, pancreas, kidney, bladder,
// brain, cervix, ovary, stomach, oesophagus, melanoma, lymphoma,
// head-and-neck, thyroid) are accepted as values with their ICD-10 blocks.
// An ICD-10 code such as C34.1 or C34 is accepted as a prefix when the
// condition's system names ICD-10 or when the value has the shape of one.
//
// Imaging modality: RadLex RID10312 MR, RID10337 PET (DICOM PT), RID10334
// SPECT (DICOM NM), RID10321 CT, or any DICOM modality defined term (CT,
// MR, PT, NM, US, CR, DX, MG, ...).
//
// Body part, matched on Body Part Examined (0018,0015) of the patient's
// series: SNOMED CT 76752008 breast (BREAST), 71854001 colon (COLON),
// 39607008 lung (CHEST, LUNG, THORAX), 12921003 pelvis (PELVIS), 41216001
// prostate (PROSTATE), and from DICOM PS3.16 CID 4031 51185008 chest
// (CHEST, LUNG, THORAX), 818981001 or the older 113345001 abdomen
// (ABDOMEN), 38266002 whole body (WHOLEBODY). Lungs are imaged as chest
// examinations: CHEST is the DICOM term whose code is the thorax, LUNG is
// its narrower sibling, and THORAX is what several vendors write although
// it is not a defined term; so lung and chest match the same series. No
// other containment is assumed (pelvis does not take PROSTATE, colon does
// not take ABDOMEN): the coarser region says nothing about the organ. A
// plain Body Part Examined value (letters, digits, space and underscore, up
// to 16) is matched as it is, after upper-casing. Modality and body part
// values are compared with the stored values exactly: DICOM code strings
// are upper case, and an exact comparison lets the database use its
// statistics and indexes.
//
// Manufacturer is matched without regard to letter case on Manufacturer
// (0008,0070), with "_", "-", ".", "," and "/" read as spaces, by whole
// words: NCIt C200140 and NeuroLex birnlex_3066 (Siemens) match SIEMENS;
// birnlex_12833 (GE) matches GE, GEMS or GENERAL ELECTRIC; birnlex_3065
// (Philips) matches PHILIPS; birnlex_3067 (Toshiba) matches TOSHIBA or
// CANON (Toshiba Medical became Canon Medical Systems, whose scanners write
// CANON_MEC). The same vendor names typed as free text map to these; other
// free text is compared whole (EQUALS) or as a substring (CONTAINS).
//
// # Semantics
//
// A patient matches a condition when one of its rows satisfies it: a
// clinical condition on the patient's cancer conditions, an imaging
// condition on "the patient has at least one series with ...". NOT_EQUALS
// asks for a known value that differs ("has a series that is not CT");
// the NOT operator asks for the complement ("has no CT series"). Patients
// whose value is unknown match neither EQUALS nor NOT_EQUALS.
//
// # Canonical form
//
// Parse simplifies the tree (nested ANDs and ORs are flattened, an operator
// with one child is replaced by it, double NOTs cancel, children are sorted
// and repeated ones dropped, IN lists are sorted and deduplicated, values
// take their normalised form: RID10321 and CT are the same modality).
// Canonical serialises that tree, without the query id, so that equivalent
// queries written differently give the same bytes; disclosure control seeds
// its noise with them.
//
// # Building queries in Go
//
// A program that offers criteria of its own (the hub's search form) builds
// the tree instead of writing JSON: Is (EQUALS or IN), IsNot (NOT_EQUALS),
// Contains and Between make conditions, reading values exactly as Parse
// does; AllOf, AnyOf and Negate combine them; NewQuery checks the tree
// against DefaultLimits and simplifies it. The result has the same
// canonical form as the equivalent parsed query, and MarshalJSON writes it
// in the Explorer's form.
package lens
