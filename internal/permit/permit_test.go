package permit

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func keys(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func claims() Claims {
	return Claims{ID: "p-1", Researcher: "u-7", Node: "north", Dataset: "lung", Snapshot: "s-1", Request: "r-1",
		Operations: []Op{OpView}, Purpose: "Lung nodules", IssuedAt: t0.Unix(), NotBefore: t0.Unix(), Expires: t0.Add(24 * time.Hour).Unix()}
}

var b64 = base64.RawURLEncoding

// raw signs header and payload (any JSON) with priv as EdDSA, bypassing
// Sign's checks: what a hub with a bug, or someone holding its key,
// could make.
func raw(priv ed25519.PrivateKey, header, payload any) string {
	h, _ := json.Marshal(header)
	p, _ := json.Marshal(payload)
	in := b64.EncodeToString(h) + "." + b64.EncodeToString(p)
	return in + "." + b64.EncodeToString(ed25519.Sign(priv, []byte(in)))
}

func hdr() map[string]any { return map[string]any{"alg": "EdDSA", "typ": Type} }

func TestRoundTrip(t *testing.T) {
	pub, priv := keys(t)
	c := claims()
	c.Operations = []Op{OpDownload, OpProcess}
	tok, err := Sign(priv, c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(tok, ".") != 2 {
		t.Fatalf("not a compact JWS: %q", tok)
	}
	got, err := Verify(pub, tok, t0.Add(time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	c.Issuer = Issuer
	if got.ID != c.ID || got.Researcher != c.Researcher || got.Node != c.Node || got.Dataset != c.Dataset ||
		got.Snapshot != c.Snapshot || got.Request != c.Request || got.Purpose != c.Purpose || got.Issuer != Issuer ||
		got.NotBefore != c.NotBefore || got.Expires != c.Expires || len(got.Operations) != 2 {
		t.Errorf("round trip: got %+v, want %+v", got, c)
	}
	if !got.Allows(OpView) || !got.Allows(OpDownload) || !got.Allows(OpProcess) {
		t.Errorf("download+process must allow view, download and process: %+v", got.Operations)
	}
	view := claims()
	if view.Allows(OpDownload) || view.Allows(OpProcess) || view.Allows("delete") {
		t.Errorf("view allows more than view")
	}
}

// TestVerifyRefuses: each way a token can be wrong, with the error it
// must give.
func TestVerifyRefuses(t *testing.T) {
	pub, priv := keys(t)
	_, other := keys(t)
	good, err := Sign(priv, claims())
	if err != nil {
		t.Fatal(err)
	}
	now := t0.Add(time.Hour)
	flip := func(tok string, part int) string {
		p := strings.Split(tok, ".")
		b, _ := b64.DecodeString(p[part])
		b[len(b)/2] ^= 0x01
		p[part] = b64.EncodeToString(b)
		return strings.Join(p, ".")
	}
	payload := func(edit func(m map[string]any)) map[string]any {
		b, _ := json.Marshal(claims())
		var m map[string]any
		json.Unmarshal(b, &m)
		m["iss"] = Issuer
		edit(m)
		return m
	}
	withHeader := func(k string, v any) map[string]any { h := hdr(); h[k] = v; return h }
	forged, _ := Sign(other, claims())
	wrongIss := claims()
	wrongIss.Issuer = "someone-else"
	wrongIssTok, err := Sign(priv, wrongIss)
	if err != nil {
		t.Fatal(err)
	}
	otherTyp, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: priv}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := json.Marshal(func() Claims { c := claims(); c.Issuer = Issuer; return c }())
	typJWS, err := otherTyp.Sign(p)
	if err != nil {
		t.Fatal(err)
	}
	typTok, _ := typJWS.CompactSerialize()
	jsonJWS, err := otherTyp.Sign(p)
	if err != nil {
		t.Fatal(err)
	}
	fullJSON := jsonJWS.FullSerialize()

	// alg none: the header says none and there is no signature.
	none := b64.EncodeToString([]byte(`{"alg":"none","typ":"`+Type+`"}`)) + "." + strings.Split(good, ".")[1] + "."
	// HS256 with the hub's public key as the HMAC secret: the classic
	// confusion of a verifier that lets the token pick the algorithm.
	hs := func(secret []byte) string {
		in := b64.EncodeToString([]byte(`{"alg":"HS256","typ":"`+Type+`"}`)) + "." + strings.Split(good, ".")[1]
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(in))
		return in + "." + b64.EncodeToString(m.Sum(nil))
	}
	long := claims()
	long.Purpose = strings.Repeat("x", MaxToken)

	for _, tc := range []struct {
		name  string
		token string
		now   time.Time
		want  error
	}{
		{"forged (another key)", forged, now, ErrSignature},
		{"tampered payload", flip(good, 1), now, ErrSignature},
		{"tampered header", flip(good, 0), now, ErrSignature},
		{"tampered signature", flip(good, 2), now, ErrSignature},
		{"alg none", none, now, ErrSignature},
		{"HS256 with the public key as secret", hs(pub), now, ErrSignature},
		{"HS256 with the base64 public key as secret", hs([]byte(base64.StdEncoding.EncodeToString(pub))), now, ErrSignature},
		{"wrong typ", typTok, now, ErrSignature},
		{"no typ", raw(priv, map[string]any{"alg": "EdDSA"}, payload(func(map[string]any) {})), now, ErrSignature},
		{"embedded key", raw(priv, withHeader("jwk", map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64.EncodeToString(pub)}), payload(func(map[string]any) {})), now, ErrSignature},
		{"crit header", raw(priv, withHeader("crit", []string{"exp"}), payload(func(map[string]any) {})), now, ErrSignature},
		{"JSON serialisation", fullJSON, now, ErrSignature},
		{"wrong issuer", wrongIssTok, now, ErrSignature},
		{"expired", good, t0.Add(24 * time.Hour), ErrExpired},
		{"long expired", good, t0.Add(48 * time.Hour), ErrExpired},
		{"not yet valid", good, t0.Add(-time.Minute), ErrNotYetValid},
		{"oversize", raw(priv, hdr(), long), now, ErrOversize},
		{"unknown claim", raw(priv, hdr(), payload(func(m map[string]any) { m["admin"] = true })), now, ErrMalformed},
		{"unknown operation", raw(priv, hdr(), payload(func(m map[string]any) { m["ops"] = []string{"delete"} })), now, ErrMalformed},
		{"no jti", raw(priv, hdr(), payload(func(m map[string]any) { delete(m, "jti") })), now, ErrMalformed},
		{"no sub", raw(priv, hdr(), payload(func(m map[string]any) { delete(m, "sub") })), now, ErrMalformed},
		{"no node", raw(priv, hdr(), payload(func(m map[string]any) { delete(m, "node") })), now, ErrMalformed},
		{"no dataset", raw(priv, hdr(), payload(func(m map[string]any) { delete(m, "dataset") })), now, ErrMalformed},
		{"no snapshot", raw(priv, hdr(), payload(func(m map[string]any) { delete(m, "snapshot") })), now, ErrMalformed},
		{"no ops", raw(priv, hdr(), payload(func(m map[string]any) { delete(m, "ops") })), now, ErrMalformed},
		{"no exp", raw(priv, hdr(), payload(func(m map[string]any) { delete(m, "exp") })), now, ErrMalformed},
		{"claims not an object", raw(priv, hdr(), []string{"p-1"}), now, ErrMalformed},
		{"empty", "", now, ErrSignature},
		{"garbage", "a.b.c", now, ErrSignature},
		{"two parts", strings.Join(strings.Split(good, ".")[:2], "."), now, ErrSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Verify(pub, tc.token, tc.now, 0)
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Verify: %v (claims %+v); want %v", err, c, tc.want)
			}
		})
	}
	// Trailing data after the claims object.
	h, _ := json.Marshal(hdr())
	pl, _ := json.Marshal(payload(func(map[string]any) {}))
	in := b64.EncodeToString(h) + "." + b64.EncodeToString(append(pl, []byte(` {"jti":"p-2"}`)...))
	trailing := in + "." + b64.EncodeToString(ed25519.Sign(priv, []byte(in)))
	if _, err := Verify(pub, trailing, now, 0); !errors.Is(err, ErrMalformed) {
		t.Errorf("claims followed by a second object: %v; want ErrMalformed", err)
	}
	// The checks are not too strict: the same raw construction of a
	// good permit passes (so that the cases above fail for their one
	// fault).
	if _, err := Verify(pub, raw(priv, hdr(), payload(func(map[string]any) {})), now, 0); err != nil {
		t.Errorf("a good permit made by hand: %v", err)
	}
	if _, err := Verify(pub, raw(priv, withHeader("kid", "hub-1"), payload(func(map[string]any) {})), now, 0); err != nil {
		t.Errorf("a good permit with a kid: %v", err)
	}
	// A key that is not an Ed25519 public key.
	if _, err := Verify(pub[:16], good, now, 0); !errors.Is(err, ErrSignature) {
		t.Errorf("short key: %v", err)
	}
}

// TestHeaderCheck: the header check alone refuses the algorithms and
// parameters a permit never has, whatever the JOSE library does after it.
func TestHeaderCheck(t *testing.T) {
	for _, h := range []string{`{"alg":"none","typ":"` + Type + `"}`, `{"alg":"HS256","typ":"` + Type + `"}`,
		`{"alg":"RS256","typ":"` + Type + `"}`, `{"typ":"` + Type + `"}`, `{"alg":"EdDSA","typ":"JWT"}`,
		`{"alg":"EdDSA","typ":"` + Type + `","jku":"https://example.org/keys"}`, `{"alg":"EdDSA","typ":"` + Type + `","x5u":"https://example.org/c"}`,
		`{"alg":"EdDSA","typ":"` + Type + `","b64":false}`, `not json`} {
		if err := checkHeader(b64.EncodeToString([]byte(h)) + ".e30.AA"); !errors.Is(err, ErrSignature) {
			t.Errorf("header %s: %v; want ErrSignature", h, err)
		}
	}
	if err := checkHeader(b64.EncodeToString([]byte(`{"alg":"EdDSA","typ":"`+Type+`"}`)) + ".e30.AA"); err != nil {
		t.Errorf("good header: %v", err)
	}
}

// TestSkew: the window is honoured within the skew either way, and not
// beyond it; a negative skew counts as none, a huge one as MaxSkew.
func TestSkew(t *testing.T) {
	pub, priv := keys(t)
	tok, err := Sign(priv, claims())
	if err != nil {
		t.Fatal(err)
	}
	exp := t0.Add(24 * time.Hour)
	for _, tc := range []struct {
		name string
		now  time.Time
		skew time.Duration
		want error
	}{
		{"before nbf within skew", t0.Add(-20 * time.Second), 30 * time.Second, nil},
		{"before nbf beyond skew", t0.Add(-40 * time.Second), 30 * time.Second, ErrNotYetValid},
		{"at nbf", t0, 0, nil},
		{"after exp within skew", exp.Add(20 * time.Second), 30 * time.Second, nil},
		{"after exp beyond skew", exp.Add(40 * time.Second), 30 * time.Second, ErrExpired},
		{"at exp", exp, 0, ErrExpired},
		{"negative skew is none", t0.Add(-time.Second), -time.Hour, ErrNotYetValid},
		{"negative skew at exp", exp.Add(-time.Second), -time.Hour, nil},
		{"skew capped", exp.Add(MaxSkew + time.Second), 24 * time.Hour, ErrExpired},
		{"skew capped before", t0.Add(-MaxSkew - time.Second), 24 * time.Hour, ErrNotYetValid},
	} {
		c, err := Verify(pub, tok, tc.now, tc.skew)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: %v; want %v", tc.name, err, tc.want)
		}
		if errors.Is(err, ErrExpired) || errors.Is(err, ErrNotYetValid) {
			if c.ID != "p-1" {
				t.Errorf("%s: claims of a well-signed permit out of its window are not returned: %+v", tc.name, c)
			}
		}
	}
}

// TestSignRefuses: Sign makes no token Verify would refuse as malformed,
// and does not panic on a bad key.
func TestSignRefuses(t *testing.T) {
	_, priv := keys(t)
	for name, edit := range map[string]func(*Claims){
		"no id":             func(c *Claims) { c.ID = "" },
		"no ops":            func(c *Claims) { c.Operations = nil },
		"bad op":            func(c *Claims) { c.Operations = []Op{"delete"} },
		"exp not after nbf": func(c *Claims) { c.Expires = c.NotBefore },
		"too long":          func(c *Claims) { c.Purpose = strings.Repeat("x", MaxToken) },
	} {
		c := claims()
		edit(&c)
		if tok, err := Sign(priv, c); err == nil {
			t.Errorf("%s: signed %q", name, tok)
		}
	}
	for _, k := range []ed25519.PrivateKey{nil, priv[:10]} {
		if _, err := Sign(k, claims()); err == nil {
			t.Errorf("signed with a %d-byte key", len(k))
		}
	}
}
