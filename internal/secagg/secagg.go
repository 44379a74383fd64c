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
package secagg

import (
	"crypto/ed25519"
	"errors"
	"io"
)

// ErrNotImplemented marks the contract's stubs.
var ErrNotImplemented = errors.New("secagg: not implemented")

// Encoding is how float64 values become ring elements: Bits is 64 or
// 128, Frac the fractional bits of the fixed point.
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
	Threshold int      `json:"threshold"`
	Length    int      `json:"length"`
	Encoding  Encoding `json:"encoding"`
}

// Directory gives the enrolment key of each participant.
type Directory map[string]ed25519.PublicKey

// Advert is a participant's two public keys for this session, signed
// with its enrolment key.
type Advert struct {
	From string `json:"from"`
	// EncKey encrypts the shares sent to this participant; MaskKey
	// agrees its pairwise masks (X25519 public keys).
	EncKey  []byte `json:"enc_key"`
	MaskKey []byte `json:"mask_key"`
	Sig     []byte `json:"sig"`
}

// Share is one participant's encrypted Shamir shares for another,
// relayed by the server, which cannot read them.
type Share struct {
	From       string `json:"from"`
	To         string `json:"to"`
	Ciphertext []byte `json:"ciphertext"`
}

// Masked is a participant's masked vector.
type Masked struct {
	From string `json:"from"`
	Data []byte `json:"data"`
}

// Reveal is what a surviving participant discloses so the server can
// remove the masks: shares of the dropped participants' mask keys and of
// the survivors' self-mask seeds, never both for one participant.
type Reveal struct {
	From    string            `json:"from"`
	Dropped map[string][]byte `json:"dropped,omitempty"`
	Alive   map[string][]byte `json:"alive,omitempty"`
}

// Client is one participant's side of one aggregation. Its methods are
// called in order: Advert, Shares, Mask, Reveal.
type Client struct{}

// NewClient starts a participant's side: self is its node id, key its
// enrolment key, dir the participants' enrolment keys, rand the source
// of randomness (crypto/rand.Reader in production).
func NewClient(cfg Config, self string, key ed25519.PrivateKey, dir Directory, rand io.Reader) (*Client, error) {
	return nil, ErrNotImplemented
}

// Advert returns this participant's signed advert.
func (c *Client) Advert() (Advert, error) { return Advert{}, ErrNotImplemented }

// Shares checks every advert's signature and returns this participant's
// encrypted shares for each other participant that advertised. Fewer
// adverts than the threshold is an error.
func (c *Client) Shares(adverts []Advert) ([]Share, error) { return nil, ErrNotImplemented }

// Mask takes the shares sent to this participant and returns its vector
// x masked.
func (c *Client) Mask(shares []Share, x []float64) (Masked, error) { return Masked{}, ErrNotImplemented }

// Reveal answers the server's list of survivors (those whose masked
// vectors it has). It refuses a list shorter than the threshold, one
// that does not name this participant, and a second, different list.
func (c *Client) Reveal(survivors []string) (Reveal, error) { return Reveal{}, ErrNotImplemented }

// Server is the aggregator's side of one aggregation.
type Server struct{}

// NewServer starts the aggregator's side.
func NewServer(cfg Config, dir Directory) (*Server, error) { return nil, ErrNotImplemented }

// Sum returns the sum of the survivors' vectors from their masked
// vectors and at least Threshold reveals, with the adverts and shares
// the round used. It fails when fewer than Threshold survived.
func (s *Server) Sum(adverts []Advert, masked []Masked, reveals []Reveal) ([]float64, error) {
	return nil, ErrNotImplemented
}
