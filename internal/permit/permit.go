// Package permit is the machine-checked form of an access decision: a
// compact JWS signed by the hub's Ed25519 key (EdDSA) that names the
// researcher, the node, the dataset, the cohort snapshot, the operations
// allowed, the purpose and the validity window. The hub signs permits
// when a dataset's representatives make it available; every node
// verifies them offline, with the hub key it received at enrolment, on
// every access.
package permit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Op is an operation a permit allows.
type Op string

// Operations.
const (
	// OpView: search and read the snapshot's images through DICOMweb
	// (QIDO-RS, WADO-RS metadata, frames, rendered views), for a viewer.
	OpView Op = "view"
	// OpDownload: everything view allows, and whole objects and the
	// snapshot's archive manifest.
	OpDownload Op = "download"
	// OpProcess: algorithms run at the node on the snapshot (jobs).
	OpProcess Op = "process"
)

// Ops lists every operation, in the order forms show them.
var Ops = []Op{OpView, OpDownload, OpProcess}

// ValidOp reports whether op names an operation.
func ValidOp(op Op) bool { return slices.Contains(Ops, op) }

// Issuer is the iss claim of every permit the hub signs.
const Issuer = "mosaic-hub"

// Type is the typ header of a permit.
const Type = "mosaic-permit+jwt"

// Claims are what a permit says. Times are JWT NumericDates (seconds).
type Claims struct {
	ID         string `json:"jti"`
	Issuer     string `json:"iss"`
	Researcher string `json:"sub"`     // the researcher's hub user id
	Node       string `json:"node"`    // the node that holds the dataset
	Dataset    string `json:"dataset"` // the dataset at that node
	Snapshot   string `json:"snapshot"`
	Request    string `json:"request"` // the access request it grants
	Operations []Op   `json:"ops"`
	Purpose    string `json:"purpose"` // the project title
	IssuedAt   int64  `json:"iat"`
	NotBefore  int64  `json:"nbf"`
	Expires    int64  `json:"exp"`
}

// Allows reports whether the claims allow op.
func (c Claims) Allows(op Op) bool {
	if slices.Contains(c.Operations, op) {
		return true
	}
	// Download includes what view allows.
	return op == OpView && slices.Contains(c.Operations, OpDownload)
}

// ExpiresAt and NotBeforeTime are the window as times.
func (c Claims) ExpiresAt() time.Time { return time.Unix(c.Expires, 0).UTC() }

// NotBeforeTime is the start of the window.
func (c Claims) NotBeforeTime() time.Time { return time.Unix(c.NotBefore, 0).UTC() }

// Errors of Verify, for errors.Is. Every failure wraps ErrInvalid.
var (
	ErrInvalid     = errors.New("permit: invalid")
	ErrSignature   = fmt.Errorf("%w: bad signature or not a permit", ErrInvalid)
	ErrExpired     = fmt.Errorf("%w: expired", ErrInvalid)
	ErrNotYetValid = fmt.Errorf("%w: not yet valid", ErrInvalid)
	ErrMalformed   = fmt.Errorf("%w: malformed claims", ErrInvalid)
	// ErrOversize marks a token longer than MaxToken, refused unread.
	ErrOversize = fmt.Errorf("%w: longer than %d bytes", ErrInvalid, MaxToken)
)

// MaxToken bounds a permit's compact serialisation.
const MaxToken = 8 << 10

// MaxSkew bounds the clock difference Verify allows either way: a
// larger skew argument is taken as MaxSkew, a negative one as zero.
const MaxSkew = 5 * time.Minute

// Sign returns c as a compact JWS signed with priv. It refuses claims
// Verify would refuse as malformed, a key that is not an Ed25519 private
// key, and claims too long for MaxToken.
func Sign(priv ed25519.PrivateKey, c Claims) (string, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return "", errors.New("permit: sign: not an Ed25519 private key")
	}
	if c.Issuer == "" {
		c.Issuer = Issuer
	}
	if err := c.check(); err != nil {
		return "", err
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: priv},
		(&jose.SignerOptions{}).WithType(Type))
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	jws, err := s.Sign(payload)
	if err != nil {
		return "", err
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		return "", err
	}
	if len(tok) > MaxToken {
		return "", fmt.Errorf("permit: sign: the permit would be %d bytes, more than %d (shorten the purpose)", len(tok), MaxToken)
	}
	return tok, nil
}

// Verify checks token's signature with pub and its window at now (with
// skew allowed either way, at most MaxSkew), and returns its claims. It
// does not know of revocations: the caller checks those.
//
// Only the compact serialisation is taken, its protected header may
// hold nothing but alg (EdDSA), typ (Type) and kid, and the claims must
// be exactly those of Claims, with the required ones present. On
// ErrExpired and ErrNotYetValid the claims are returned too (their
// signature is good), so that callers can say which permit it was.
func Verify(pub ed25519.PublicKey, token string, now time.Time, skew time.Duration) (Claims, error) {
	var c Claims
	if len(token) > MaxToken {
		return c, ErrOversize
	}
	if len(pub) != ed25519.PublicKeySize {
		return c, ErrSignature
	}
	skew = max(0, min(skew, MaxSkew))
	if err := checkHeader(token); err != nil {
		return c, err
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil || len(jws.Signatures) != 1 {
		return c, ErrSignature
	}
	payload, err := jws.Verify(pub)
	if err != nil {
		return c, ErrSignature
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if dec.More() {
		return Claims{}, fmt.Errorf("%w: data after the claims", ErrMalformed)
	}
	if err := c.check(); err != nil {
		return Claims{}, err
	}
	if c.Issuer != Issuer {
		return Claims{}, ErrSignature
	}
	if now.Add(skew).Before(c.NotBeforeTime()) {
		return c, ErrNotYetValid
	}
	if !now.Add(-skew).Before(c.ExpiresAt()) {
		return c, ErrExpired
	}
	return c, nil
}

// allowedHeader lists the protected header parameters a permit may
// carry. Anything else (an embedded key, a key URL, certificates, crit)
// is refused: the only key that counts is the hub's, given to Verify.
var allowedHeader = map[string]bool{"alg": true, "typ": true, "kid": true}

// checkHeader reads the protected header of a compact JWS before any
// library does, and refuses every algorithm but EdDSA, every typ but
// Type and every parameter allowedHeader does not list.
func checkHeader(token string) error {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ErrSignature
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return ErrSignature
	}
	var h map[string]json.RawMessage
	if err := json.Unmarshal(raw, &h); err != nil {
		return ErrSignature
	}
	for k := range h {
		if !allowedHeader[k] {
			return fmt.Errorf("%w: header parameter %q", ErrSignature, k)
		}
	}
	var alg, typ string
	if json.Unmarshal(h["alg"], &alg) != nil || alg != string(jose.EdDSA) {
		return fmt.Errorf("%w: algorithm %q", ErrSignature, alg)
	}
	if json.Unmarshal(h["typ"], &typ) != nil || typ != Type {
		return fmt.Errorf("%w: typ %q", ErrSignature, typ)
	}
	return nil
}

func (c Claims) check() error {
	switch {
	case c.ID == "", c.Researcher == "", c.Node == "", c.Dataset == "", c.Snapshot == "":
		return fmt.Errorf("%w: jti, sub, node, dataset and snapshot are required", ErrMalformed)
	case len(c.Operations) == 0:
		return fmt.Errorf("%w: no operations", ErrMalformed)
	case c.Expires <= c.NotBefore:
		return fmt.Errorf("%w: exp is not after nbf", ErrMalformed)
	}
	for _, op := range c.Operations {
		if !ValidOp(op) {
			return fmt.Errorf("%w: unknown operation %q", ErrMalformed, op)
		}
	}
	return nil
}
