package airlock

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"
)

// Errors of the store. Callers test them with errors.Is.
var (
	ErrNotFound   = errors.New("airlock: no such output")
	ErrDecided    = errors.New("airlock: the output was decided already")
	ErrSamePerson = errors.New("airlock: the same person cannot approve an output twice; a second person must release it")
	ErrRefused    = errors.New("airlock: the output failed the checks; nobody can release it")
	ErrPerson     = errors.New("airlock: a person (a name of printable characters, at most 100 bytes) is required")
	ErrNoContent  = errors.New("airlock: the content of this output was not kept")
)

// AuditEntry is what the store records in the node's audit log for each
// hold, release, approval, rejection and refusal: Actor is "node" for
// the checks' own decisions and "person:NAME" for people; Detail holds
// the job, the output's name, size, digest and the checks' names, never
// content.
type AuditEntry struct {
	Actor   string
	Action  string
	Subject string
	Detail  map[string]any
}

// Audit actions of the airlock.
const (
	ActionHold    = "airlock-hold"    // an output waits for a person
	ActionRelease = "airlock-release" // an output may leave (checks or people)
	ActionApprove = "airlock-approve" // the first of two people approved
	ActionReject  = "airlock-reject"  // a person refused an output
	ActionRefuse  = "airlock-refuse"  // the checks refused an output
)

// StoreOptions configure a Store.
type StoreOptions struct {
	// Policy is the node's airlock policy (defaults filled in).
	Policy Policy
	// Audit records an entry in the node's audit log. The store records
	// before it acts, and does not act when Audit fails. Required.
	Audit func(AuditEntry) error
	// Now is the store's clock (time.Now when nil).
	Now func() time.Time
}

// Store keeps the outputs of jobs at a node: those that wait for a
// person, and the record of those released, rejected or refused. It
// lives in a folder (DATA/airlock): per output ID.json (its Held
// record) and ID.data (its content), each written whole to a temporary
// file, synced and renamed into place; changes are serialised across
// processes by a lock file, so the CLI and a serving node may share it.
// Its methods are safe for concurrent use.
type Store struct {
	dir   string
	pol   Policy
	audit func(AuditEntry) error
	now   func() time.Time

	mu        sync.Mutex
	onRelease func(Held, []byte)
}

// OpenStore opens (creating) the store in dir.
func OpenStore(dir string, opts StoreOptions) (*Store, error) {
	if opts.Audit == nil {
		return nil, errors.New("airlock: a store needs an audit log")
	}
	pol := opts.Policy.WithDefaults()
	if err := pol.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("airlock: %w", err)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store{dir: dir, pol: pol, audit: opts.Audit, now: opts.Now}, nil
}

// Policy is the store's policy, defaults filled in.
func (s *Store) Policy() Policy { return s.pol }

// OnRelease sets the function called with each output released in this
// process, after its release is recorded, with what may leave
// (Publishable of the content): the jobs runner sends it to the hub and
// then calls MarkSent. Outputs released by another process
// (the CLI) are found by Unsent.
func (s *Store) OnRelease(f func(h Held, data []byte)) {
	s.mu.Lock()
	s.onRelease = f
	s.mu.Unlock()
}

// lock serialises changes within the process and across processes.
func (s *Store) lock() (unlock func(), err error) {
	s.mu.Lock()
	f, err := os.OpenFile(filepath.Join(s.dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("airlock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		s.mu.Unlock()
		return nil, fmt.Errorf("airlock: lock: %w", err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
		s.mu.Unlock()
	}, nil
}

// newID returns a fresh output id.
func newID() string {
	var b [10]byte
	rand.Read(b[:])
	return "out-" + hex.EncodeToString(b[:])
}

// validID reports whether id has the form newID gives, so that no id can
// name a path outside the store.
func validID(id string) bool {
	if len(id) != 24 || !strings.HasPrefix(id, "out-") {
		return false
	}
	for _, c := range id[4:] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// validPerson reports whether p can name a person.
func validPerson(p string) bool {
	if p == "" || len(p) > 100 || !utf8.ValidString(p) || strings.TrimSpace(p) != p {
		return false
	}
	for _, r := range p {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// failedChecks lists the names of the checks that did not release.
func failedChecks(v Verdict) []string {
	var out []string
	for _, f := range v.Findings {
		if f.Result != Release && !slices.Contains(out, f.Check) {
			out = append(out, f.Check)
		}
	}
	return out
}

func detailOf(h Held) map[string]any {
	d := map[string]any{"job": h.Job, "name": h.Name, "size": h.Size, "sha256": h.SHA256, "decision": string(h.Verdict.Decision)}
	if c := failedChecks(h.Verdict); len(c) > 0 {
		d["checks"] = c
	}
	return d
}

// Hold checks one output of a job and keeps it: released at once when
// the checks release it (OnRelease is called), held for a person when
// they send it to review, recorded as refused when they refuse it. The
// job's earlier outputs count towards MaxFiles and MaxTotalBytes. The
// returned Held says which. Content over MaxFileBytes is not kept.
// OnRelease, like ReleasedContent, gets what may leave: Publishable of
// the content, without the largest contributions.
func (s *Store) Hold(out Output, perm Permissions) (Held, error) {
	if out.Job == "" || out.Name == "" || len(out.Name) > 255 || !utf8.ValidString(out.Name) || strings.ContainsAny(out.Name, "\x00\n\r") {
		return Held{}, errors.New("airlock: an output needs a job and a name (one line of UTF-8, at most 255 bytes)")
	}
	v := Check(s.pol, perm, out)
	unlock, err := s.lock()
	if err != nil {
		return Held{}, err
	}
	all, err := s.list()
	if err != nil {
		unlock()
		return Held{}, err
	}
	count, total := 0, int64(len(out.Data))
	for _, h := range all {
		if h.Job == out.Job {
			count++
			total += h.Size
		}
	}
	if count >= s.pol.MaxFiles {
		v.add("count", Refuse, "the job wrote more than %d outputs", s.pol.MaxFiles)
	}
	if total > s.pol.MaxTotalBytes {
		v.add("total-size", Refuse, "the job's outputs pass the limit of %d bytes in all", s.pol.MaxTotalBytes)
	}
	sum := sha256.Sum256(out.Data)
	h := Held{ID: newID(), Job: out.Job, Name: out.Name, Size: int64(len(out.Data)), SHA256: hex.EncodeToString(sum[:]),
		Verdict: v, Created: s.now().UTC(), State: StateHeld}
	action, actor := ActionHold, "node"
	switch v.Decision {
	case Release:
		h.State, h.Decided, action = StateReleased, h.Created, ActionRelease
	case Refuse:
		h.State, h.Decided, action = StateRefused, h.Created, ActionRefuse
	}
	if err := s.audit(AuditEntry{Actor: actor, Action: action, Subject: h.ID, Detail: detailOf(h)}); err != nil {
		unlock()
		return Held{}, fmt.Errorf("airlock: the output could not be recorded in the audit log, so it does not leave: %w", err)
	}
	h.Stored = int64(len(out.Data)) <= s.pol.MaxFileBytes
	if h.Stored {
		if err := writeAtomic(s.path(h.ID, ".data"), out.Data); err != nil {
			unlock()
			return Held{}, err
		}
	}
	if err := s.write(h); err != nil {
		unlock()
		return Held{}, err
	}
	f := s.onRelease
	unlock()
	if h.State == StateReleased && f != nil {
		f(h, Publishable(out.Data))
	}
	return h, nil
}

// LogOutputName is the name of the output that holds a job's log lines
// a LogFilter held.
const LogOutputName = "log-held.txt"

// HoldLog keeps the log lines of a job that a LogFilter held as one text
// output (LogOutputName), which waits for a person like any other. No
// lines: nothing is kept, and the zero Held is returned.
func (s *Store) HoldLog(job string, lines []string, perm Permissions) (Held, error) {
	if len(lines) == 0 {
		return Held{}, nil
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(strings.TrimRight(strings.ToValidUTF8(l, "\uFFFD"), "\r\n"))
		b.WriteByte('\n')
	}
	return s.Hold(Output{Job: job, Name: LogOutputName, Data: []byte(b.String())}, perm)
}

// List returns every output in the store, oldest first.
func (s *Store) List() ([]Held, error) { return s.list() }

// ListJob returns the outputs of one job, oldest first.
func (s *Store) ListJob(job string) ([]Held, error) {
	all, err := s.list()
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(h Held) bool { return h.Job != job }), nil
}

func (s *Store) list() ([]Held, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("airlock: %w", err)
	}
	var out []Held
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !validID(id) {
			continue
		}
		h, err := s.read(id)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	slices.SortStableFunc(out, func(a, b Held) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// Get returns one output's record.
func (s *Store) Get(id string) (Held, error) {
	if !validID(id) {
		return Held{}, ErrNotFound
	}
	return s.read(id)
}

// Content returns one output's content (for a person to look at).
func (s *Store) Content(id string) ([]byte, error) {
	h, err := s.Get(id)
	if err != nil {
		return nil, err
	}
	if !h.Stored {
		return nil, ErrNoContent
	}
	b, err := os.ReadFile(s.path(id, ".data"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoContent
	}
	if err != nil {
		return nil, fmt.Errorf("airlock: %w", err)
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != h.SHA256 {
		return nil, fmt.Errorf("airlock: the content of %s does not match its digest", id)
	}
	return b, nil
}

// ReleasedContent returns what leaves the node of a released output
// (Publishable of its content): what the jobs runner sends to the hub.
func (s *Store) ReleasedContent(id string) ([]byte, error) {
	h, err := s.Get(id)
	if err != nil {
		return nil, err
	}
	if h.State != StateReleased {
		return nil, fmt.Errorf("airlock: %s is %s, not released", id, h.State)
	}
	data, err := s.Content(id)
	if err != nil {
		return nil, err
	}
	return Publishable(data), nil
}

// Release approves a held output for person. Without TwoPerson it is
// released at once; with it, the first approval is recorded and a second,
// different person releases it (the same person twice: ErrSamePerson).
// An output the checks refused cannot be released (ErrRefused). The
// returned Held's State says whether it was released.
func (s *Store) Release(id, person string) (Held, error) {
	if !validPerson(person) {
		return Held{}, ErrPerson
	}
	unlock, err := s.lock()
	if err != nil {
		return Held{}, err
	}
	h, err := s.decidable(id)
	if err != nil {
		unlock()
		return Held{}, err
	}
	if slices.Contains(h.Approvals, person) {
		unlock()
		return Held{}, ErrSamePerson
	}
	h.Approvals = append(h.Approvals, person)
	action := ActionApprove
	if !s.pol.TwoPerson || len(h.Approvals) >= 2 {
		action = ActionRelease
		h.State, h.DecidedBy, h.Decided = StateReleased, slices.Clone(h.Approvals), s.now().UTC()
	}
	d := detailOf(h)
	d["approvals"] = len(h.Approvals)
	if err := s.audit(AuditEntry{Actor: "person:" + person, Action: action, Subject: id, Detail: d}); err != nil {
		unlock()
		return Held{}, fmt.Errorf("airlock: the decision could not be recorded in the audit log, so it is not taken: %w", err)
	}
	if err := s.write(h); err != nil {
		unlock()
		return Held{}, err
	}
	f := s.onRelease
	unlock()
	if h.State == StateReleased && f != nil {
		data, err := s.ReleasedContent(id)
		if err != nil {
			return h, err
		}
		f(h, data)
	}
	return h, nil
}

// Reject refuses a held output for good, with a reason in words (no
// data: it goes to the audit log).
func (s *Store) Reject(id, person, reason string) (Held, error) {
	if !validPerson(person) {
		return Held{}, ErrPerson
	}
	reason = strings.TrimSpace(reason)
	if len(reason) > 500 || !utf8.ValidString(reason) {
		return Held{}, errors.New("airlock: a reason is one text of at most 500 bytes")
	}
	unlock, err := s.lock()
	if err != nil {
		return Held{}, err
	}
	defer unlock()
	h, err := s.decidable(id)
	if err != nil {
		return Held{}, err
	}
	h.State, h.DecidedBy, h.Reason, h.Decided = StateRejected, []string{person}, reason, s.now().UTC()
	d := detailOf(h)
	d["reason"] = reason
	if err := s.audit(AuditEntry{Actor: "person:" + person, Action: ActionReject, Subject: id, Detail: d}); err != nil {
		return Held{}, fmt.Errorf("airlock: the decision could not be recorded in the audit log, so it is not taken: %w", err)
	}
	if err := s.write(h); err != nil {
		return Held{}, err
	}
	return h, nil
}

// decidable reads a held output that a person may still decide on.
func (s *Store) decidable(id string) (Held, error) {
	if !validID(id) {
		return Held{}, ErrNotFound
	}
	h, err := s.read(id)
	if err != nil {
		return Held{}, err
	}
	switch h.State {
	case StateHeld:
		return h, nil
	case StateRefused:
		return Held{}, ErrRefused
	}
	return Held{}, fmt.Errorf("%w (%s)", ErrDecided, h.State)
}

// Unsent returns the released outputs not yet marked sent, oldest
// first: the jobs runner sends them (also those released by the CLI
// while the node served) and marks each with MarkSent.
func (s *Store) Unsent() ([]Held, error) {
	all, err := s.list()
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(h Held) bool { return h.State != StateReleased || !h.Sent.IsZero() }), nil
}

// MarkSent records that a released output reached the hub.
func (s *Store) MarkSent(id string) error {
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	h, err := s.Get(id)
	if err != nil {
		return err
	}
	if h.State != StateReleased {
		return fmt.Errorf("airlock: %s is %s, not released", id, h.State)
	}
	h.Sent = s.now().UTC()
	return s.write(h)
}

func (s *Store) path(id, ext string) string { return filepath.Join(s.dir, id+ext) }

func (s *Store) read(id string) (Held, error) {
	b, err := os.ReadFile(s.path(id, ".json"))
	if errors.Is(err, fs.ErrNotExist) {
		return Held{}, ErrNotFound
	}
	if err != nil {
		return Held{}, fmt.Errorf("airlock: %w", err)
	}
	var h Held
	if err := json.Unmarshal(b, &h); err != nil || h.ID != id {
		return Held{}, fmt.Errorf("airlock: the record of %s is damaged", id)
	}
	return h, nil
}

func (s *Store) write(h Held) error {
	b, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return fmt.Errorf("airlock: %w", err)
	}
	return writeAtomic(s.path(h.ID, ".json"), append(b, '\n'))
}

// writeAtomic writes data to path through a synced temporary file
// renamed into place, then syncs the folder: a crash leaves the old file
// or the new one, never a part.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("airlock: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("airlock: write %s: %w", filepath.Base(path), err)
	}
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("airlock: sync %s: %w", dir, err)
		}
	}
	return nil
}
