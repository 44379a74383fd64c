// Package secagg is secure aggregation: nodes add pairwise masks agreed
// with keys they sign with their enrolment keys, so that whoever sums
// their vectors learns only the sum, never one node's vector; up to a
// threshold of nodes may drop out and the sum of the rest is still
// recovered, without unmasking anyone (double masking with Shamir shares
// of each node's secrets, after Bonawitz et al. 2017). Values travel as
// fixed-point integers in a ring of 2^64 or 2^128, so sums are exact.
// The package holds the protocol's arithmetic and messages only; the
// caller carries the messages (package compute, over the federation
// link).
//
// A round, with the server relaying every message:
//
//  1. each client's Advert goes to the server, which hands all of them
//     to every client (Server.CheckAdverts drops forged ones early);
//  2. each client's Shares, given the adverts, go to the server, which
//     routes them to their recipients (Server.Route);
//  3. each client's Mask, given the shares sent to it and its vector,
//     goes to the server;
//  4. the server names the survivors, those whose masked vectors it
//     holds (Server.Survivors), and each survivor answers with Reveal;
//  5. Server.Sum removes the masks and returns the survivors' sum.
//
// A node keeps its Client for the whole session (it holds the session's
// secrets, in memory only) and a new Client for every session. Every
// message names its session and is checked against it. A
// client's methods are idempotent: called again with the same input
// they return the same message, with different input they refuse, so a
// retried task cannot make a client mask twice or reveal twice.
package secagg

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
)

// ErrNotImplemented marks the contract's stubs. Nothing in the package
// returns it any more; it stays for callers that tested for it.
var ErrNotImplemented = errors.New("secagg: not implemented")

// MaxLength bounds Config.Length.
const MaxLength = 1 << 30

// Encoding is how float64 values become ring elements: Bits is 64 or
// 128 (or any whole number of bytes from 32 to 64 bits, such as Ring48),
// Frac the fractional bits of the fixed point.
type Encoding struct {
	Bits int `json:"bits"`
	Frac int `json:"frac"`
}

// Config describes one aggregation, the same at every party.
type Config struct {
	// Session names the aggregation uniquely (computation, step, round):
	// keys and masks are bound to it.
	Session string `json:"session"`
	// Participants are the node ids, sorted.
	Participants []string `json:"participants"`
	// Threshold is the fewest survivors from which the sum is recovered
	// (at least two thirds of the participants, and more than half).
	// Zero means DefaultThreshold.
	Threshold int      `json:"threshold"`
	Length    int      `json:"length"`
	Encoding  Encoding `json:"encoding"`
}

// DefaultThreshold is the least threshold allowed for n participants:
// at least two thirds of them, and more than half.
func DefaultThreshold(n int) int {
	return max((2*n+2)/3, n/2+1)
}

// Validate checks the configuration and returns it with the threshold
// filled in when it was zero.
func (c Config) Validate() (Config, error) {
	if c.Session == "" {
		return c, errors.New("secagg: no session")
	}
	n := len(c.Participants)
	if n == 0 {
		return c, errors.New("secagg: no participants")
	}
	for i, p := range c.Participants {
		if p == "" {
			return c, errors.New("secagg: a participant without an id")
		}
		if i > 0 && c.Participants[i-1] >= p {
			return c, errors.New("secagg: participants are not sorted and distinct")
		}
	}
	if c.Threshold == 0 {
		c.Threshold = DefaultThreshold(n)
	}
	if c.Threshold < DefaultThreshold(n) || c.Threshold > n {
		return c, fmt.Errorf("secagg: threshold %d for %d participants, want %d to %d", c.Threshold, n, DefaultThreshold(n), n)
	}
	if c.Length < 1 || c.Length > MaxLength {
		return c, fmt.Errorf("secagg: length %d, want 1 to %d", c.Length, MaxLength)
	}
	if err := c.Encoding.Validate(); err != nil {
		return c, err
	}
	return c, nil
}

// digest binds every message to the whole configuration, not only the
// session's name.
func (c Config) digest() string {
	parts := []string{"mosaic secagg config v1", c.Session, strconv.Itoa(len(c.Participants))}
	parts = append(parts, c.Participants...)
	parts = append(parts, strconv.Itoa(c.Threshold), strconv.Itoa(c.Length),
		strconv.Itoa(c.Encoding.Bits), strconv.Itoa(c.Encoding.Frac))
	h := sha256.Sum256([]byte(label(parts...)))
	return string(h[:])
}

// point is a participant's Shamir point: its index from 1.
func (c Config) point(id string) (int64, bool) {
	i, ok := slices.BinarySearch(c.Participants, id)
	return int64(i + 1), ok
}

// Directory gives the enrolment key of each participant.
type Directory map[string]ed25519.PublicKey

func (d Directory) check(c Config) error {
	for _, p := range c.Participants {
		if len(d[p]) != ed25519.PublicKeySize {
			return fmt.Errorf("secagg: no enrolment key for participant %s", p)
		}
	}
	return nil
}

// Advert is a participant's two public keys for this session, signed
// with its enrolment key.
type Advert struct {
	Session string `json:"session"`
	From    string `json:"from"`
	// EncKey encrypts the shares sent to this participant; MaskKey
	// agrees its pairwise masks (X25519 public keys).
	EncKey  []byte `json:"enc_key"`
	MaskKey []byte `json:"mask_key"`
	// SeedHash commits to the participant's self-mask seed, so the
	// server can tell a seed rebuilt from wrong shares.
	SeedHash []byte `json:"seed_hash"`
	Sig      []byte `json:"sig"`
}

// Share is one participant's encrypted Shamir shares for another,
// relayed by the server, which cannot read them.
type Share struct {
	Session    string `json:"session"`
	From       string `json:"from"`
	To         string `json:"to"`
	Ciphertext []byte `json:"ciphertext"`
}

// Masked is a participant's masked vector.
type Masked struct {
	Session string `json:"session"`
	From    string `json:"from"`
	Data    []byte `json:"data"`
}

// Reveal is what a surviving participant discloses so the server can
// remove the masks: shares of the dropped participants' mask keys and of
// the survivors' self-mask seeds, never both for one participant.
type Reveal struct {
	Session string            `json:"session"`
	From    string            `json:"from"`
	Dropped map[string][]byte `json:"dropped,omitempty"`
	Alive   map[string][]byte `json:"alive,omitempty"`
}

// label joins parts unambiguously (each with its length) for signing
// and key derivation.
func label(parts ...string) string {
	var b []byte
	for _, p := range parts {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return string(b)
}

func advertMessage(digest string, a Advert) []byte {
	return []byte(label("mosaic secagg advert v1", digest, a.From, string(a.EncKey), string(a.MaskKey), string(a.SeedHash)))
}

func seedHash(digest, from string, seed []byte) []byte {
	h := sha256.Sum256([]byte(label("mosaic secagg seed v1", digest, from, string(seed))))
	return h[:]
}

// selfStream is the mask a participant's seed gives.
func selfStream(digest, from string, seed []byte, sub bool) (stream, error) {
	k, err := hkdf.Key(sha256.New, seed, nil, label("mosaic secagg self mask v1", digest, from), 32)
	if err != nil {
		return stream{}, err
	}
	s := stream{sub: sub}
	copy(s.key[:], k)
	return s, nil
}

// pairStream is the mask u and v agree: u adds it when u < v and
// subtracts it otherwise; sub says whether u subtracts.
func pairStream(digest string, u string, priv *ecdh.PrivateKey, v string, pub *ecdh.PublicKey) (stream, error) {
	secret, err := priv.ECDH(pub)
	if err != nil {
		return stream{}, fmt.Errorf("secagg: key agreement with %s: %w", v, err)
	}
	lo, hi := min(u, v), max(u, v)
	k, err := hkdf.Key(sha256.New, secret, nil, label("mosaic secagg pair mask v1", digest, lo, hi), 32)
	if err != nil {
		return stream{}, err
	}
	s := stream{sub: u > v}
	copy(s.key[:], k)
	return s, nil
}

// shareAEAD is the cipher of the shares from sends to to.
func shareAEAD(digest, from, to string, priv *ecdh.PrivateKey, pub *ecdh.PublicKey) (cipher.AEAD, []byte, error) {
	secret, err := priv.ECDH(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("secagg: key agreement between %s and %s: %w", from, to, err)
	}
	k, err := hkdf.Key(sha256.New, secret, nil, label("mosaic secagg share key v1", digest, from, to), 32)
	if err != nil {
		return nil, nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, nil, err
	}
	return aead, []byte(label("mosaic secagg share v1", digest, from, to)), nil
}

const sharePlainSize = 1 + 2*shareSize

// peer is a checked advert.
type peer struct {
	advert Advert
	enc    *ecdh.PublicKey
	mask   *ecdh.PublicKey
}

// checkAdvert verifies one advert against the configuration and the
// directory.
func checkAdvert(cfg Config, digest string, dir Directory, a Advert) (peer, error) {
	if a.Session != cfg.Session {
		return peer{}, fmt.Errorf("secagg: an advert for another session")
	}
	if _, ok := cfg.point(a.From); !ok {
		return peer{}, fmt.Errorf("secagg: an advert from %q, not a participant", a.From)
	}
	if len(a.SeedHash) != sha256.Size || len(a.Sig) != ed25519.SignatureSize {
		return peer{}, fmt.Errorf("secagg: the advert of %s is malformed", a.From)
	}
	if !ed25519.Verify(dir[a.From], advertMessage(digest, a), a.Sig) {
		return peer{}, fmt.Errorf("secagg: the advert of %s is not signed by its enrolment key", a.From)
	}
	enc, err := ecdh.X25519().NewPublicKey(a.EncKey)
	if err != nil {
		return peer{}, fmt.Errorf("secagg: the advert of %s has a bad key", a.From)
	}
	mask, err := ecdh.X25519().NewPublicKey(a.MaskKey)
	if err != nil {
		return peer{}, fmt.Errorf("secagg: the advert of %s has a bad key", a.From)
	}
	return peer{advert: a, enc: enc, mask: mask}, nil
}

// checkAdverts verifies all adverts; any forged, foreign or repeated
// advert is an error.
func checkAdverts(cfg Config, digest string, dir Directory, adverts []Advert) (map[string]peer, error) {
	out := make(map[string]peer, len(adverts))
	for _, a := range adverts {
		p, err := checkAdvert(cfg, digest, dir, a)
		if err != nil {
			return nil, err
		}
		if _, dup := out[a.From]; dup {
			return nil, fmt.Errorf("secagg: two adverts from %s", a.From)
		}
		out[a.From] = p
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// fingerprint identifies a method's input, to tell a retry from a
// different request.
func fingerprint(v any) [32]byte {
	b, _ := json.Marshal(v)
	return sha256.Sum256(b)
}

// held is what a client holds of another participant's secrets.
type held struct {
	seed, key []byte // Shamir shares at this client's point
}

// Client is one participant's side of one aggregation. Its methods are
// called in order: Advert, Shares, Mask, Reveal. It is safe for
// concurrent use.
type Client struct {
	cfg    Config
	digest string
	self   string
	point  int64
	key    ed25519.PrivateKey
	dir    Directory
	rand   io.Reader

	enc, mask *ecdh.PrivateKey
	seed      []byte
	advert    Advert

	mu sync.Mutex
	// after Shares
	sharesFP  [32]byte
	sharesOut []Share
	peers     map[string]peer
	own       held
	// after Mask
	maskFP  [32]byte
	masked  *Masked
	holding map[string]held // by sender, this client included
	// after Reveal
	survivors []string
	reveal    *Reveal
}

// NewClient starts a participant's side: self is its node id, key its
// enrolment key, dir the participants' enrolment keys, rand the source
// of randomness (crypto/rand.Reader in production).
func NewClient(cfg Config, self string, key ed25519.PrivateKey, dir Directory, rand io.Reader) (*Client, error) {
	cfg, err := cfg.Validate()
	if err != nil {
		return nil, err
	}
	pt, ok := cfg.point(self)
	if !ok {
		return nil, fmt.Errorf("secagg: %s is not a participant", self)
	}
	if err := dir.check(cfg); err != nil {
		return nil, err
	}
	if len(key) != ed25519.PrivateKeySize || !bytes.Equal(key.Public().(ed25519.PublicKey), dir[self]) {
		return nil, fmt.Errorf("secagg: the key given is not the enrolment key of %s", self)
	}
	if rand == nil {
		return nil, errors.New("secagg: no source of randomness")
	}
	c := &Client{cfg: cfg, digest: cfg.digest(), self: self, point: pt, key: key, dir: dir, rand: rand}
	var buf [96]byte
	if _, err := io.ReadFull(rand, buf[:]); err != nil {
		return nil, fmt.Errorf("secagg: randomness: %w", err)
	}
	if c.enc, err = ecdh.X25519().NewPrivateKey(buf[:32]); err != nil {
		return nil, err
	}
	if c.mask, err = ecdh.X25519().NewPrivateKey(buf[32:64]); err != nil {
		return nil, err
	}
	c.seed = slices.Clone(buf[64:96])
	c.advert = Advert{
		Session:  cfg.Session,
		From:     self,
		EncKey:   c.enc.PublicKey().Bytes(),
		MaskKey:  c.mask.PublicKey().Bytes(),
		SeedHash: seedHash(c.digest, self, c.seed),
	}
	c.advert.Sig = ed25519.Sign(key, advertMessage(c.digest, c.advert))
	return c, nil
}

// Config returns the configuration the client runs, its threshold
// filled in.
func (c *Client) Config() Config { return c.cfg }

// Advert returns this participant's signed advert.
func (c *Client) Advert() (Advert, error) { return c.advert, nil }

// Shares checks every advert's signature and returns this participant's
// encrypted shares for each other participant that advertised. Fewer
// adverts than the threshold is an error, and so is a forged, foreign or
// repeated advert, or this participant's own advert missing or altered.
func (c *Client) Shares(adverts []Advert) ([]Share, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fp := fingerprint(adverts)
	if c.sharesOut != nil {
		if fp != c.sharesFP {
			return nil, errors.New("secagg: shares were already made from other adverts")
		}
		return slices.Clone(c.sharesOut), nil
	}
	peers, err := checkAdverts(c.cfg, c.digest, c.dir, adverts)
	if err != nil {
		return nil, err
	}
	mine, ok := peers[c.self]
	if !ok {
		return nil, errors.New("secagg: the adverts leave out this participant's own")
	}
	if !bytes.Equal(mine.advert.EncKey, c.advert.EncKey) || !bytes.Equal(mine.advert.MaskKey, c.advert.MaskKey) || !bytes.Equal(mine.advert.SeedHash, c.advert.SeedHash) {
		return nil, errors.New("secagg: this participant's advert is not the one it made")
	}
	if len(peers) < c.cfg.Threshold {
		return nil, fmt.Errorf("secagg: %d adverts, fewer than the threshold %d", len(peers), c.cfg.Threshold)
	}
	names := sortedKeys(peers)
	xs := make([]int64, len(names))
	for i, n := range names {
		xs[i], _ = c.cfg.point(n)
	}
	seedShares, err := split(c.seed, xs, c.cfg.Threshold, c.rand)
	if err != nil {
		return nil, err
	}
	keyShares, err := split(c.mask.Bytes(), xs, c.cfg.Threshold, c.rand)
	if err != nil {
		return nil, err
	}
	out := make([]Share, 0, len(names)-1)
	for i, to := range names {
		if to == c.self {
			c.own = held{seed: seedShares[i], key: keyShares[i]}
			continue
		}
		// A key no mask can be agreed with (a point of small order) is
		// refused now rather than at masking.
		if _, err := c.mask.ECDH(peers[to].mask); err != nil {
			return nil, fmt.Errorf("secagg: the advert of %s has a mask key no mask can be agreed with", to)
		}
		aead, ad, err := shareAEAD(c.digest, c.self, to, c.enc, peers[to].enc)
		if err != nil {
			return nil, err
		}
		plain := make([]byte, 0, sharePlainSize)
		plain = append(plain, 1)
		plain = append(plain, seedShares[i]...)
		plain = append(plain, keyShares[i]...)
		nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+sharePlainSize+aead.Overhead())
		if _, err := io.ReadFull(c.rand, nonce); err != nil {
			return nil, fmt.Errorf("secagg: randomness: %w", err)
		}
		out = append(out, Share{Session: c.cfg.Session, From: c.self, To: to, Ciphertext: aead.Seal(nonce, nonce, plain, ad)})
	}
	c.peers, c.sharesFP, c.sharesOut = peers, fp, out
	return slices.Clone(out), nil
}

// openShare decrypts and parses a share sent to this client.
func (c *Client) openShare(s Share) (held, error) {
	p := c.peers[s.From]
	aead, ad, err := shareAEAD(c.digest, s.From, c.self, c.enc, p.enc)
	if err != nil {
		return held{}, err
	}
	ns := aead.NonceSize()
	if len(s.Ciphertext) != ns+sharePlainSize+aead.Overhead() {
		return held{}, fmt.Errorf("secagg: the share from %s has the wrong size", s.From)
	}
	plain, err := aead.Open(nil, s.Ciphertext[:ns], s.Ciphertext[ns:], ad)
	if err != nil {
		return held{}, fmt.Errorf("secagg: the share from %s does not decrypt", s.From)
	}
	if plain[0] != 1 {
		return held{}, fmt.Errorf("secagg: the share from %s has an unknown version", s.From)
	}
	h := held{seed: plain[1 : 1+shareSize], key: plain[1+shareSize:]}
	if _, err := parseShare(h.seed); err != nil {
		return held{}, fmt.Errorf("secagg: the share from %s: %w", s.From, err)
	}
	if _, err := parseShare(h.key); err != nil {
		return held{}, fmt.Errorf("secagg: the share from %s: %w", s.From, err)
	}
	return h, nil
}

// Mask takes the shares sent to this participant and returns its vector
// x masked. The participants whose shares did not come are left out:
// nobody masks with them. A share that is foreign, repeated or does not
// decrypt is an error, and so are fewer shares than the threshold needs,
// a vector of the wrong length, or a value the encoding cannot hold.
// Called again with the same shares it returns the first masked vector,
// whatever x is, so two different vectors are never masked alike. The
// returned Data is the client's own copy, shared to spare a model-sized
// copy: the caller must not change it.
func (c *Client) Mask(shares []Share, x []float64) (Masked, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sharesOut == nil {
		return Masked{}, errors.New("secagg: Mask before Shares")
	}
	fp := fingerprint(shares)
	if c.masked != nil {
		if fp != c.maskFP {
			return Masked{}, errors.New("secagg: already masked with other shares")
		}
		return *c.masked, nil
	}
	if len(x) != c.cfg.Length {
		return Masked{}, fmt.Errorf("secagg: a vector of %d values, want %d", len(x), c.cfg.Length)
	}
	holding := map[string]held{c.self: c.own}
	for _, s := range shares {
		switch {
		case s.Session != c.cfg.Session:
			return Masked{}, errors.New("secagg: a share for another session")
		case s.To != c.self:
			return Masked{}, fmt.Errorf("secagg: a share for %q, not for %s", s.To, c.self)
		case s.From == c.self:
			return Masked{}, errors.New("secagg: a share from this participant to itself")
		}
		if _, ok := c.peers[s.From]; !ok {
			return Masked{}, fmt.Errorf("secagg: a share from %q, which did not advertise", s.From)
		}
		if _, dup := holding[s.From]; dup {
			return Masked{}, fmt.Errorf("secagg: two shares from %s", s.From)
		}
		h, err := c.openShare(s)
		if err != nil {
			return Masked{}, err
		}
		holding[s.From] = h
	}
	if len(holding) < c.cfg.Threshold {
		return Masked{}, fmt.Errorf("secagg: shares from %d participants, fewer than the threshold %d", len(holding), c.cfg.Threshold)
	}
	v := make([]byte, c.cfg.Length*c.cfg.Encoding.Bytes())
	if err := c.cfg.Encoding.encodeInto(v, x); err != nil {
		return Masked{}, err
	}
	self, err := selfStream(c.digest, c.self, c.seed, false)
	if err != nil {
		return Masked{}, err
	}
	streams := []stream{self}
	for _, other := range sortedKeys(holding) {
		if other == c.self {
			continue
		}
		s, err := pairStream(c.digest, c.self, c.mask, other, c.peers[other].mask)
		if err != nil {
			return Masked{}, err
		}
		streams = append(streams, s)
	}
	if err := applyStreams(v, c.cfg.Encoding.Bytes(), streams); err != nil {
		return Masked{}, err
	}
	m := Masked{Session: c.cfg.Session, From: c.self, Data: v}
	c.masked, c.maskFP, c.holding = &m, fp, holding
	return m, nil
}

// Reveal answers the server's list of survivors (those whose masked
// vectors it has). It refuses a list shorter than the threshold, one
// that does not name this participant, one naming a participant whose
// shares this one did not get, and a second, different list.
func (c *Client) Reveal(survivors []string) (Reveal, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.masked == nil {
		return Reveal{}, errors.New("secagg: Reveal before Mask")
	}
	s := slices.Clone(survivors)
	slices.Sort(s)
	if len(slices.Compact(slices.Clone(s))) != len(s) {
		return Reveal{}, errors.New("secagg: a survivor is named twice")
	}
	if c.reveal != nil {
		if !slices.Equal(s, c.survivors) {
			return Reveal{}, errors.New("secagg: refused a second, different list of survivors")
		}
		return cloneReveal(*c.reveal), nil
	}
	if len(s) < c.cfg.Threshold {
		return Reveal{}, fmt.Errorf("secagg: %d survivors, fewer than the threshold %d", len(s), c.cfg.Threshold)
	}
	if _, ok := slices.BinarySearch(s, c.self); !ok {
		return Reveal{}, errors.New("secagg: the survivors do not include this participant")
	}
	r := Reveal{Session: c.cfg.Session, From: c.self, Alive: map[string][]byte{}, Dropped: map[string][]byte{}}
	for _, id := range s {
		h, ok := c.holding[id]
		if !ok {
			return Reveal{}, fmt.Errorf("secagg: survivor %q did not share with this participant", id)
		}
		r.Alive[id] = slices.Clone(h.seed)
	}
	for id, h := range c.holding {
		if _, alive := r.Alive[id]; !alive {
			r.Dropped[id] = slices.Clone(h.key)
		}
	}
	c.survivors, c.reveal = s, &r
	return cloneReveal(r), nil
}

func cloneReveal(r Reveal) Reveal {
	out := r
	out.Alive, out.Dropped = map[string][]byte{}, map[string][]byte{}
	for k, v := range r.Alive {
		out.Alive[k] = slices.Clone(v)
	}
	for k, v := range r.Dropped {
		out.Dropped[k] = slices.Clone(v)
	}
	return out
}
