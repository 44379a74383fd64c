// Package blobstore is the content-addressed object store of a data node:
// every DICOM object it holds, from tens of kilobytes to several
// gigabytes, is stored once under the SHA-256 of its bytes (a Key).
//
// A blob is written through a Writer and hashed on the way in; Commit
// names it by the hash and makes it visible, and a Commit of content
// already present keeps the one copy and says so. Readers are seekable
// and support ReadAt, so a DICOM parser can jump to the pixel data.
//
// There are two engines behind the Store interface, and one conformance
// test suite runs against both:
//
//   - Local (OpenLocal, or Open with a path) keeps blobs as files under
//     ROOT/sha256/ab/<key>. It writes without buffering, reads from an
//     *os.File so copies to sockets and files stay in the kernel, and
//     recovers from crashes at open.
//   - Bucket (OpenBucket, or Open with an s3://, file:// or mem:// URL)
//     keeps blobs as objects sha256/<key> in a gocloud.dev/blob bucket.
//
// # Durability
//
// Commit makes a blob visible, not durable; Sync makes every blob
// committed before it durable, so an ingest can commit a batch and pay for
// one Sync. The caller records a blob as stored (in the catalog, in a
// reply to the sender) only after Sync returns nil. Whatever the moment of
// a crash, a blob found under a key afterwards has exactly that key's
// content; a blob committed but not yet synced may be missing. See Local
// for how the local engine keeps that promise and Bucket.Sync for object
// stores.
//
// Delete is not synchronized with Commit: a collector deleting a blob
// while an ingest commits the same content may leave the ingest with a
// key that no longer resolves. Callers that delete must serialize that
// themselves (for example by deleting only blobs unreferenced for longer
// than any ingest lasts).
package blobstore
