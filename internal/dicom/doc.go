// Package dicom reads and writes DICOM Part 10 files and bare datasets.
//
// The reader streams over an io.Reader and handles every transfer syntax
// found in practice: implicit and explicit VR little endian, explicit VR
// big endian, deflated explicit VR little endian, and encapsulated pixel
// data of any compressed syntax (JPEG, JPEG-LS, JPEG 2000, HTJ2K, RLE,
// MPEG, HEVC), kept as fragments with the Basic Offset Table byte for
// byte. Sequences of defined and undefined length nest to a configurable
// depth; UN elements of undefined length are read as implicit VR
// sequences; datasets without preamble or meta are recognised.
//
// Values are kept as the raw bytes read, so the writer puts back every
// element that was not changed byte for byte. Changed values are encoded
// in the dataset's character set (or the whole dataset is switched to
// UTF-8); the lengths of enclosing sequences and items are recomputed;
// stale group lengths are dropped; the file meta information is rebuilt
// when the dataset was edited.
//
// Memory stays bounded: Rewrite streams pixel data from one stream to
// another, a value length larger than what remains is rejected before
// anything is allocated, and inflating a deflated dataset is capped.
// Every decoding failure is an *Error naming the byte offset and tag.
package dicom
