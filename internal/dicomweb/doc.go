// Package dicomweb is the protocol layer of DICOMweb (DICOM PS3.18) that
// the node's HTTP handlers use: it parses requests and formats responses,
// and stores nothing.
//
// It provides:
//
//   - STOW-RS request bodies: PartReader reads a multipart/related;
//     type="application/dicom" body part by part, streaming each body with
//     strict limits (Limits): a part over its size limit fails alone and
//     the next can be read; a body cut off before its closing boundary
//     always fails with ErrTruncated.
//   - WADO-RS response bodies: PartWriter writes multipart/related with a
//     random boundary and hands back the underlying writer for each part,
//     so that file contents can be copied to the response without passing
//     through this package. AcceptsMultipartDICOM and AcceptsJSON read
//     Accept headers.
//   - QIDO-RS queries: ParseQuery turns the query parameters of a search
//     into a Query of typed Match values (exact, wild card, UID list, date
//     and time ranges), include fields, limit and offset, validated per
//     VR. Values stay raw strings for bound SQL parameters; LikePattern
//     escapes them for LIKE.
//   - STOW-RS responses: StoreResponse builds the Store Instances Response
//     Module in the DICOM JSON model and picks the HTTP status.
//
// Every failure is an *Error carrying the HTTP status to answer with and
// wrapping a sentinel (ErrTruncated, ErrInvalidQuery, ...) for errors.Is;
// ErrorJSON makes a response body of it. Error texts name parameters,
// attributes and part numbers, never values, so no patient data reaches
// responses or logs.
//
// The package imports net/http for status codes only; it reads from
// io.Reader and writes to io.Writer, so it is tested without a server.
package dicomweb
