// Package ingest is the one pipeline that takes DICOM objects from files,
// folders and zip archives to a destination: a folder of de-identified
// files (mosaic deid) or a node's de-identification door (mosaic node
// ingest, the demo).
//
// Inputs are listed in a stable order (List), with the guards every input
// needs: zip members with absolute, drive-qualified or ".." names are not
// read, members declaring or inflating beyond a size limit or inflating
// too many times their compressed size (zip bombs) fail, nested archives
// are refused, links to folders inside a folder are not followed, and the
// destination and secret files are never read as input. Run hands the
// objects to a Sink on a pool of workers and gives the results back in
// input order, with a Summary and progress through callbacks, so that the
// command line only prints. Every input that cannot be opened, walked or
// read becomes a failed result: nothing is dropped.
package ingest
