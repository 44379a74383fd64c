package secagg

import (
	"bytes"
	"crypto/ecdh"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Server is the aggregator's side of one aggregation. It keeps no state
// between calls: every method works from the messages it is given.
type Server struct {
	cfg    Config
	digest string
	dir    Directory
}

// NewServer starts the aggregator's side.
func NewServer(cfg Config, dir Directory) (*Server, error) {
	cfg, err := cfg.Validate()
	if err != nil {
		return nil, err
	}
	if err := dir.check(cfg); err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, digest: cfg.digest(), dir: dir}, nil
}

// Config returns the configuration the server runs, its threshold
// filled in.
func (s *Server) Config() Config { return s.cfg }

// CheckAdverts keeps the adverts whose signatures and keys check, the
// first of each participant, and says in words why each other one was
// left out. Fewer good adverts than the threshold is an error.
func (s *Server) CheckAdverts(adverts []Advert) ([]Advert, []string, error) {
	var good []Advert
	var why []string
	seen := map[string]bool{}
	for _, a := range adverts {
		if _, err := checkAdvert(s.cfg, s.digest, s.dir, a); err != nil {
			why = append(why, err.Error())
			continue
		}
		if seen[a.From] {
			why = append(why, fmt.Sprintf("secagg: two adverts from %s", a.From))
			continue
		}
		seen[a.From] = true
		good = append(good, a)
	}
	sort.Slice(good, func(i, j int) bool { return good[i].From < good[j].From })
	if len(good) < s.cfg.Threshold {
		return good, why, fmt.Errorf("secagg: %d good adverts, fewer than the threshold %d", len(good), s.cfg.Threshold)
	}
	return good, why, nil
}

// Route groups the shares by recipient for relaying. Only a sender that
// sent exactly one share to every other advertised participant is
// routed; the others are dropped before masking (nobody masks with
// them). It returns the shares for each recipient and the senders kept,
// sorted. Fewer senders than the threshold is an error.
func (s *Server) Route(adverts []Advert, shares []Share) (map[string][]Share, []string, error) {
	peers, err := checkAdverts(s.cfg, s.digest, s.dir, adverts)
	if err != nil {
		return nil, nil, err
	}
	sent := map[string]map[string]Share{}
	bad := map[string]bool{}
	for _, sh := range shares {
		_, okFrom := peers[sh.From]
		_, okTo := peers[sh.To]
		if sh.Session != s.cfg.Session || !okFrom || !okTo || sh.From == sh.To {
			if okFrom {
				bad[sh.From] = true
			}
			continue
		}
		if sent[sh.From] == nil {
			sent[sh.From] = map[string]Share{}
		}
		if _, dup := sent[sh.From][sh.To]; dup {
			bad[sh.From] = true
			continue
		}
		sent[sh.From][sh.To] = sh
	}
	var senders []string
	for from := range peers {
		if !bad[from] && len(sent[from]) == len(peers)-1 {
			senders = append(senders, from)
		}
	}
	slices.Sort(senders)
	if len(senders) < s.cfg.Threshold {
		return nil, senders, fmt.Errorf("secagg: %d participants shared, fewer than the threshold %d", len(senders), s.cfg.Threshold)
	}
	out := map[string][]Share{}
	for _, from := range senders {
		for _, to := range sortedKeys(sent[from]) {
			out[to] = append(out[to], sent[from][to])
		}
	}
	return out, senders, nil
}

// Survivors checks the masked vectors (session, sender, length) and
// returns their senders, sorted: the list to ask reveals with. Fewer
// than the threshold is an error. Give it only vectors of the senders
// Route kept: the others' vectors carry masks nobody else applied, and
// the clients refuse a list naming them.
func (s *Server) Survivors(masked []Masked) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	want := s.cfg.Length * s.cfg.Encoding.Bytes()
	for _, m := range masked {
		if m.Session != s.cfg.Session {
			return nil, errors.New("secagg: a masked vector for another session")
		}
		if _, ok := s.cfg.point(m.From); !ok {
			return nil, fmt.Errorf("secagg: a masked vector from %q, not a participant", m.From)
		}
		if seen[m.From] {
			return nil, fmt.Errorf("secagg: two masked vectors from %s", m.From)
		}
		if len(m.Data) != want {
			return nil, fmt.Errorf("secagg: the masked vector of %s has %d bytes, want %d", m.From, len(m.Data), want)
		}
		seen[m.From] = true
		out = append(out, m.From)
	}
	slices.Sort(out)
	if len(out) < s.cfg.Threshold {
		return out, fmt.Errorf("secagg: %d survivors, fewer than the threshold %d", len(out), s.cfg.Threshold)
	}
	return out, nil
}

// Sum returns the sum of the survivors' vectors from their masked
// vectors and at least Threshold reveals, with the adverts the round
// used. It fails when fewer than Threshold survived or revealed, when
// the reveals disagree on who survived or dropped, and when a secret
// rebuilt from the reveals does not match its owner's advert.
func (s *Server) Sum(adverts []Advert, masked []Masked, reveals []Reveal) ([]float64, error) {
	peers, err := checkAdverts(s.cfg, s.digest, s.dir, adverts)
	if err != nil {
		return nil, err
	}
	alive, err := s.Survivors(masked)
	if err != nil {
		return nil, err
	}
	for _, id := range alive {
		if _, ok := peers[id]; !ok {
			return nil, fmt.Errorf("secagg: a masked vector from %s, which did not advertise", id)
		}
	}
	dropped, used, err := s.checkReveals(peers, alive, reveals)
	if err != nil {
		return nil, err
	}
	xs := make([]int64, len(used))
	for i, r := range used {
		xs[i], _ = s.cfg.point(r.From)
	}
	ys := make([][]byte, len(used))

	// The survivors' self-mask seeds.
	streams := make([]stream, 0, len(alive)*(1+len(dropped)))
	for _, id := range alive {
		for i, r := range used {
			ys[i] = r.Alive[id]
		}
		seed, err := combine(xs, ys)
		if err != nil || !bytes.Equal(seedHash(s.digest, id, seed), peers[id].advert.SeedHash) {
			return nil, fmt.Errorf("secagg: the reveals do not rebuild the self-mask seed of %s", id)
		}
		st, err := selfStream(s.digest, id, seed, true)
		if err != nil {
			return nil, err
		}
		streams = append(streams, st)
	}
	// The dropped participants' mask keys, and the masks each survivor
	// agreed with them.
	for _, d := range dropped {
		for i, r := range used {
			ys[i] = r.Dropped[d]
		}
		k, err := combine(xs, ys)
		if err != nil {
			return nil, fmt.Errorf("secagg: the reveals do not rebuild the mask key of %s", d)
		}
		priv, err := ecdh.X25519().NewPrivateKey(k)
		if err != nil || !bytes.Equal(priv.PublicKey().Bytes(), peers[d].advert.MaskKey) {
			return nil, fmt.Errorf("secagg: the reveals do not rebuild the mask key of %s", d)
		}
		for _, id := range alive {
			// The survivor's mask with d, seen from d, has the opposite
			// sign: applying it as d would cancels it.
			st, err := pairStream(s.digest, d, priv, id, peers[id].mask)
			if err != nil {
				return nil, err
			}
			streams = append(streams, st)
		}
	}
	total := make([]byte, s.cfg.Length*s.cfg.Encoding.Bytes())
	for _, m := range masked {
		addBytes(total, m.Data, s.cfg.Encoding.Bytes())
	}
	if err := applyStreams(total, s.cfg.Encoding.Bytes(), streams); err != nil {
		return nil, err
	}
	return s.cfg.Encoding.decode(total), nil
}

// checkReveals checks the reveals against the survivors and returns the
// dropped participants they name and the reveals to use: the first
// Threshold by point.
func (s *Server) checkReveals(peers map[string]peer, alive []string, reveals []Reveal) ([]string, []Reveal, error) {
	if len(reveals) < s.cfg.Threshold {
		return nil, nil, fmt.Errorf("secagg: %d reveals, fewer than the threshold %d", len(reveals), s.cfg.Threshold)
	}
	seen := map[string]bool{}
	var dropped []string
	for i, r := range reveals {
		if r.Session != s.cfg.Session {
			return nil, nil, errors.New("secagg: a reveal for another session")
		}
		if _, ok := slices.BinarySearch(alive, r.From); !ok {
			return nil, nil, fmt.Errorf("secagg: a reveal from %q, which is not a survivor", r.From)
		}
		if seen[r.From] {
			return nil, nil, fmt.Errorf("secagg: two reveals from %s", r.From)
		}
		seen[r.From] = true
		if !slices.Equal(sortedKeys(r.Alive), alive) {
			return nil, nil, fmt.Errorf("secagg: the reveal of %s does not name the survivors", r.From)
		}
		d := sortedKeys(r.Dropped)
		if i == 0 {
			dropped = d
		} else if !slices.Equal(d, dropped) {
			return nil, nil, errors.New("secagg: the reveals disagree on who dropped out")
		}
		for _, v := range r.Alive {
			if len(v) != shareSize {
				return nil, nil, fmt.Errorf("secagg: the reveal of %s has a malformed share", r.From)
			}
		}
		for _, v := range r.Dropped {
			if len(v) != shareSize {
				return nil, nil, fmt.Errorf("secagg: the reveal of %s has a malformed share", r.From)
			}
		}
	}
	for _, d := range dropped {
		if _, ok := peers[d]; !ok {
			return nil, nil, fmt.Errorf("secagg: the reveals name %q as dropped, which did not advertise", d)
		}
		if _, ok := slices.BinarySearch(alive, d); ok {
			return nil, nil, fmt.Errorf("secagg: the reveals name %s both survivor and dropped", d)
		}
	}
	used := slices.Clone(reveals)
	slices.SortFunc(used, func(a, b Reveal) int { return strings.Compare(a.From, b.From) })
	return dropped, used[:s.cfg.Threshold], nil
}
