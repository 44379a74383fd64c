#!/usr/bin/python3
"""Independent reader for the de-identification conformance tests.

It uses pydicom, an implementation independent of the Go codec and engine,
to read DICOM files named one per line on standard input, and writes one
JSON object to standard output mapping each path to its result.

    deid_scan.py ids       identifying values of each file (the inputs)
    deid_scan.py strings   every text value of each file (the outputs)

"ids" gives, per file, a list of identifying values:
    {"tag": "00100010", "kw": "PatientName", "kind": "name",
     "path": "OtherPatientIDsSequence>PatientID", "forms": [...], "raw": [hex...]}
"forms" are the spellings to look for (for person names: family^given,
given family, family given, family, the whole component group); "raw" are
the same forms encoded in the file's own character set (hex, null where a
form cannot be encoded), so that the byte scan finds them whatever the
encoding. The test applies its own length
and policy rules to these values.

"strings" gives, per file, [[path, text], ...] for every text value at any
depth, decoded by pydicom with the file's character sets.

A file pydicom cannot read gives {"error": "..."}.
"""
import json
import sys
import warnings

warnings.simplefilter("ignore")

import pydicom  # noqa: E402
from pydicom import charset  # noqa: E402
from pydicom.datadict import keyword_for_tag  # noqa: E402
from pydicom.multival import MultiValue  # noqa: E402

# Attributes whose values identify a patient, a person, a place or a
# device, chosen for these tests from PS3.15 Table E.1-1 independently of
# the engine's own list. Every value of VR PN is identifying too.
IDENTIFYING = {
    0x00100020: "id",       # Patient ID
    0x00100021: "id",       # Issuer of Patient ID
    0x00101000: "id",       # Other Patient IDs
    0x00100030: "date",     # Patient's Birth Date
    0x00100033: "date",     # Patient's Birth Date in Alternative Calendar
    0x00100034: "date",     # Patient's Death Date in Alternative Calendar
    0x00101040: "address",  # Patient's Address
    0x00102154: "phone",    # Patient's Telephone Numbers
    0x00101090: "id",       # Medical Record Locator
    0x00102150: "address",  # Country of Residence
    0x00102152: "address",  # Region of Residence
    0x00102180: "text",     # Occupation
    0x00101080: "text",     # Military Rank
    0x00101081: "text",     # Branch of Service
    0x00380010: "id",       # Admission ID
    0x00080050: "id",       # Accession Number
    0x00200010: "id",       # Study ID
    0x00401001: "id",       # Requested Procedure ID
    0x00400009: "id",       # Scheduled Procedure Step ID
    0x00400253: "id",       # Performed Procedure Step ID
    0x00080080: "place",    # Institution Name
    0x00080081: "address",  # Institution Address
    0x00081040: "place",    # Institutional Department Name
    0x00080092: "address",  # Referring Physician's Address
    0x00080094: "phone",    # Referring Physician's Telephone Numbers
    0x00401102: "address",  # Person's Address
    0x00401103: "phone",    # Person's Telephone Numbers
    0x00401104: "phone",    # Person's Telecom Information
    0x00081010: "device",   # Station Name
    0x00181000: "device",   # Device Serial Number
    0x00181004: "device",   # Plate ID
    0x0018700A: "device",   # Detector ID
    0x00400241: "device",   # Performed Station AE Title
    0x00400242: "device",   # Performed Station Name
    0x00400001: "device",   # Scheduled Station AE Title
    0x00400010: "device",   # Scheduled Station Name
    0x00020016: "device",   # Source Application Entity Title (file meta)
    0x00020017: "device",   # Sending Application Entity Title (file meta)
    0x00020018: "device",   # Receiving Application Entity Title (file meta)
}

PERSON_ID_CODE_SEQ = 0x00401101  # Person Identification Code Sequence
CODE_VALUE = 0x00080100
TEXT_VRS = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN",
            "SH", "ST", "TM", "UC", "UI", "UR", "UT"}


def values(elem):
    v = elem.value
    if v is None:
        return []
    if isinstance(v, (list, MultiValue)):
        return [x for x in v if x is not None]
    return [v]


def name_forms(pn):
    """Spellings of a person name to look for."""
    out = []
    for group in str(pn).split("="):
        parts = group.split("^")
        family = parts[0].strip()
        given = parts[1].strip() if len(parts) > 1 else ""
        if family and given:
            out += [family + "^" + given, given + " " + family, family + " " + given]
        if family:
            out.append(family)
        elif given:
            out.append(given)
        whole = group.rstrip("^").strip()
        if whole:
            out.append(whole)
    seen, uniq = set(), []
    for f in out:
        if f not in seen:
            seen.add(f)
            uniq.append(f)
    return uniq


def encodings_of(ds):
    cs = ds.get("SpecificCharacterSet")
    if not cs:
        cs = ["ISO_IR 6"]
    elif isinstance(cs, str):
        cs = [cs]
    return charset.convert_encodings([c or "ISO_IR 6" for c in cs])


def encode(form, encodings):
    try:
        return charset.encode_string(form, encodings).hex()
    except Exception:
        return None


def ids(ds):
    out = []
    pid = str(ds.get("PatientID", "") or "").strip()

    def walk(d, path, encs, in_person_code):
        if "SpecificCharacterSet" in d:
            encs = encodings_of(d)
        for elem in d:
            kw = keyword_for_tag(elem.tag) or ("%08X" % elem.tag)
            here = path + [kw]
            if elem.VR == "SQ":
                for item in elem.value or []:
                    walk(item, here, encs, in_person_code or elem.tag == PERSON_ID_CODE_SEQ)
                continue
            if elem.VR not in TEXT_VRS:
                continue
            kind = None
            if elem.VR == "PN":
                kind = "name"
            elif elem.tag in IDENTIFYING:
                kind = IDENTIFYING[elem.tag]
            elif in_person_code and elem.tag == CODE_VALUE:
                kind = "id"  # a staff identifier
            elif elem.tag.is_private and pid and len(pid) >= 4:
                if any(pid.lower() in str(v).lower() for v in values(elem)):
                    kind = "private"
            if kind is None:
                continue
            for v in values(elem):
                s = str(v).strip()
                if not s:
                    continue
                forms = name_forms(v) if kind == "name" else [s]
                raw = [encode(f, encs) for f in forms]
                out.append({"tag": "%08X" % elem.tag, "kw": kw, "kind": kind,
                            "path": ">".join(here), "forms": forms, "raw": raw})

    if ds.file_meta:
        walk(ds.file_meta, [], encodings_of(ds), False)
    walk(ds, [], encodings_of(ds), False)
    return out


def strings(ds):
    out = []

    def walk(d, path):
        for elem in d:
            kw = keyword_for_tag(elem.tag) or ("%08X" % elem.tag)
            here = path + [kw]
            if elem.VR == "SQ":
                for item in elem.value or []:
                    walk(item, here)
                continue
            if elem.VR not in TEXT_VRS:
                continue
            for v in values(elem):
                s = str(v)
                if s:
                    out.append([">".join(here), s])

    walk(ds, [])
    for elem in ds.file_meta or []:
        if elem.VR in TEXT_VRS:
            for v in values(elem):
                out.append([keyword_for_tag(elem.tag) or "%08X" % elem.tag, str(v)])
    return out


def main():
    mode = sys.argv[1]
    fn = {"ids": ids, "strings": strings}[mode]
    result = {}
    for line in sys.stdin:
        path = line.rstrip("\n")
        if not path:
            continue
        try:
            ds = pydicom.dcmread(path, force=True, defer_size=None)
            ds.decode()
            result[path] = {"values": fn(ds)}
        except Exception as e:  # reported, never skipped silently
            result[path] = {"error": "%s: %s" % (type(e).__name__, e)}
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
