// Package blobstore is the content-addressed object store of a data node:
// every DICOM object it holds, from tens of kilobytes to several
// gigabytes, is named by the SHA-256 of its bytes (a Key) and found again
// by a Ref: the key and, where the engine chose the place, a location.
//
// A blob is written through a Writer and hashed on the way in; Commit
// names it by the hash, makes it visible and returns its Ref. Readers are
// seekable and support ReadAt, so a DICOM parser can jump to the pixel
// data.
//
// There are three engines behind the Store interface, and one conformance
// test suite runs against all of them:
//
//   - Packs (OpenPacks, or Open with a path), the default on a local
//     disk, appends blobs to large pack files, ROOT/packs/SEQ.pack, and
//     returns each blob's place in its Ref; the caller keeps it (a node
//     in its index). No file, inode or directory entry per blob, and one
//     fdatasync per pack per Sync. It also reads blobs the Local engine
//     left in the same root.
//   - Local (OpenLocal) keeps blobs as files under ROOT/sha256/ab/<key>.
//     It writes without buffering, reads from an *os.File so copies to
//     sockets and files stay in the kernel, and recovers from crashes at
//     open.
//   - Bucket (OpenBucket, or Open with an s3://, file:// or mem:// URL)
//     keeps blobs as objects sha256/<key> in a gocloud.dev/blob bucket.
//
// Local and Bucket store a blob under its key, so content written twice is
// stored once; Packs stores every Commit, and its caller deletes the
// copies it does not keep.
//
// # Durability
//
// Commit makes a blob visible, not durable; Sync makes every blob
// committed before it durable, so an ingest can commit a batch and pay for
// one Sync. The caller records a blob as stored (in the catalog, in a
// reply to the sender) only after Sync returns nil. Whatever the moment of
// a crash, a blob found under a key afterwards has exactly that key's
// content; a blob committed but not yet synced may be missing. See Packs
// and Local for how the local engines keep that promise and Bucket.Sync
// for object stores.
//
// Delete is not synchronized with Commit: a collector deleting a blob
// while an ingest commits the same content may leave the ingest with a
// key that no longer resolves. Callers that delete must serialize that
// themselves (for example by deleting only blobs unreferenced for longer
// than any ingest lasts).
package blobstore
