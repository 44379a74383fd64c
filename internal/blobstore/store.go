package blobstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Key is the lowercase hex SHA-256 of a blob's content (64 characters).
type Key string

// KeyLen is the length of a Key in characters.
const KeyLen = 64

var (
	// ErrNotFound is returned (wrapped) by Open and Stat when no blob has
	// the key.
	ErrNotFound = errors.New("blobstore: blob not found")
	// ErrInvalidKey is returned (wrapped) by ParseKey and by every Store
	// method given a Key that is not 64 lowercase hex characters.
	ErrInvalidKey = errors.New("blobstore: invalid key")
	// ErrClosed is returned (wrapped) by a Writer used after Commit or
	// Abort, and by a Store used after Close.
	ErrClosed = errors.New("blobstore: closed")
)

// ParseKey checks that s is 64 lowercase hex characters and returns it as a
// Key. Anything else, including upper case and path elements such as "../",
// is rejected with ErrInvalidKey: keys become file names and object names,
// so this is the check that keeps them inside the store.
func ParseKey(s string) (Key, error) {
	if !validKey(s) {
		return "", fmt.Errorf("%w: want %d lowercase hex characters", ErrInvalidKey, KeyLen)
	}
	return Key(s), nil
}

func validKey(s string) bool {
	if len(s) != KeyLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// keyOnly returns r's key for an engine that stores blobs under their key
// alone: a Ref with a pack location names no blob there.
func keyOnly(op string, r Ref) (Key, error) {
	if err := r.Key.check(op); err != nil {
		return "", err
	}
	if r.Loc != "" {
		return "", fmt.Errorf("blobstore: %s %s: %w (a pack location, and this store keeps no packs)", op, r.Key, ErrNotFound)
	}
	return r.Key, nil
}

// Ref is what a caller keeps to find a blob again: its Key and, for a
// blob in a pack (see Packs), the place the engine chose for it. Loc is
// empty for blobs stored under their key alone (Local files, Bucket).
type Ref struct {
	Key Key
	Loc Loc
}

// String returns the key, followed by "@" and the location when there is
// one. It names a blob in logs and errors.
func (r Ref) String() string {
	if r.Loc == "" {
		return string(r.Key)
	}
	return string(r.Key) + "@" + string(r.Loc)
}

// Loc is the place of a blob inside a pack store: "SEQ:OFFSET", the
// pack's number and the offset of the blob's record in it, both decimal.
// It is opaque to callers, who store it and give it back.
type Loc string

// check returns a wrapped ErrInvalidKey if k was not built by ParseKey or
// a Commit (Key is a string type, so callers can convert anything).
func (k Key) check(op string) error {
	if !validKey(string(k)) {
		return fmt.Errorf("blobstore: %s: %w", op, ErrInvalidKey)
	}
	return nil
}

// Store is a content-addressed blob store: every blob is named by the
// SHA-256 of its bytes, so a blob never changes once it is visible. Engines
// that store blobs under their key (Local files, Bucket) keep one copy of
// any content written twice; the pack engine places every blob it is
// given and leaves it to the caller, who knows which copy it keeps, to
// Delete the others.
//
// A Store is safe for concurrent use by many goroutines.
type Store interface {
	// Create starts a new blob. Write its bytes to the Writer, then call
	// Commit, which computes the key, makes the blob visible and returns
	// its Ref and size, or Abort. Committing content that is already
	// present is not an error: engines that store by key report
	// existed=true and keep one copy. Commit does not make the blob
	// durable; see Sync.
	Create(ctx context.Context) (Writer, error)
	// Open returns a reader of the blob, or an error wrapping ErrNotFound
	// if there is none at r.
	Open(ctx context.Context, r Ref) (Reader, error)
	// Stat returns the blob's size, or an error wrapping ErrNotFound.
	Stat(ctx context.Context, r Ref) (size int64, err error)
	// Delete removes the blob. Deleting an absent blob returns nil.
	// Readers already open keep reading the old content where the engine
	// allows it (local files do; in a pack the content is released at
	// once and reads as zeros), so delete only what nothing refers to.
	Delete(ctx context.Context, r Ref) error
	// List calls fn once for every blob with its size and modification
	// time, in no particular order, and stops at the first error fn or the
	// store returns. Blobs committed or deleted during the walk may or may
	// not be seen.
	List(ctx context.Context, fn func(r Ref, size int64, mod time.Time) error) error
	// Sync makes every blob whose Commit returned before the call durable:
	// it survives a kill -9, an operating system crash and a power cut.
	// If Sync returns an error, the caller must treat the blobs committed
	// since the last successful Sync as possibly lost and write them again;
	// whatever does survive under a key always has that key's content.
	Sync(ctx context.Context) error
	// Close releases the store. It does not Sync.
	Close() error
}

// Writer receives the bytes of one new blob. It is not safe for
// concurrent use. After a Write error the blob cannot be committed: Commit
// returns the error and discards the bytes.
type Writer interface {
	io.Writer
	// Commit finishes the blob; existed reports that the store already
	// held this content (the new copy is dropped; engines that store by
	// key only). Calling Commit or Abort
	// again afterwards returns ErrClosed and nil respectively, so
	// `defer w.Abort()` is safe.
	Commit() (r Ref, size int64, existed bool, err error)
	// Abort discards the bytes written so far.
	Abort() error
}

// Reader reads one blob. ReadAt may be called concurrently with itself;
// Read and Seek share a position and are not safe for concurrent use.
type Reader interface {
	io.ReadSeekCloser
	io.ReaderAt
	// Size is the blob's length in bytes.
	Size() int64
}

// Open opens a store from a location:
//
//   - a path, absolute or relative ("/var/lib/mosaic/blobs", "data/blobs"):
//     the pack engine rooted at that directory, created if missing (it
//     also reads blobs a Local store left there);
//   - a URL with a scheme ("s3://bucket?region=eu-west-1", "mem://",
//     "file:///srv/blobs"): the object-store engine on the gocloud.dev/blob
//     bucket of that URL. Supported schemes are s3, file and mem.
//
// Use a plain path, not file://, for a store on a local disk: only the
// local engines make blobs durable on Sync (see Bucket.Sync).
func Open(ctx context.Context, location string) (Store, error) {
	if location == "" {
		return nil, errors.New("blobstore: open: empty location")
	}
	if isURL(location) {
		return OpenBucket(ctx, location)
	}
	return OpenPacks(location, PackOptions{})
}

// isURL reports whether location starts with "scheme://" (RFC 3986
// scheme syntax); anything else is a path, even if it contains "://" later.
func isURL(location string) bool {
	i := strings.Index(location, "://")
	if i <= 0 {
		return false
	}
	for j, c := range location[:i] {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case j > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}
