// Package oidc is the hub's side of OpenID Connect: a relying party of
// one provider (discovery from the issuer URL, the authorization code
// flow with PKCE, ID token verification, refresh, RP-initiated logout),
// the verification of a provider's JWTs presented as bearer tokens by
// scripts, the mapping of a provider's claims to a hub user (id, e-mail,
// name, role and represented datasets), the helpers of the device
// authorization grant (RFC 8628) the hub serves for its own API tokens,
// and the CLI's side of that grant with its credentials file.
//
// The package knows nothing of the hub's store: it turns tokens into an
// Identity, and the hub decides what to do with it.
package oidc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Config is the configuration of the hub's OpenID provider.
type Config struct {
	// Issuer is the provider's issuer URL; discovery reads
	// Issuer + "/.well-known/openid-configuration".
	Issuer string `json:"issuer"`
	// ClientID and ClientSecret are the hub's registration at the
	// provider (a confidential client; the secret may be empty for a
	// public client, PKCE is used either way).
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	// RedirectURL is the hub's callback, PublicURL + "/oidc/callback".
	RedirectURL string `json:"redirect_url"`
	// Name is the provider's name on the login page ("Life Science
	// Login").
	Name string `json:"name"`
	// Scopes are asked for beside "openid" (default: profile, email,
	// offline_access).
	Scopes []string `json:"scopes"`
	// APIAudience is the audience bearer tokens of scripts must carry
	// (default: ClientID).
	APIAudience string `json:"api_audience"`
	// Mapping turns claims into a hub user.
	Mapping Mapping `json:"mapping"`
	// HTTPClient, when set, makes the requests to the provider (tests
	// pass one that trusts their server); default: a client with a 10 s
	// timeout.
	HTTPClient *http.Client `json:"-"`
	// Now, when set, replaces time.Now when tokens are checked.
	Now func() time.Time `json:"-"`
	// KeyRefetch is the shortest time between two fetches of the
	// provider's keys (default 5 s): a token signed by a key not seen
	// yet is refused until then.
	KeyRefetch time.Duration `json:"key_refetch"`
}

// Validate checks a configuration.
func (c *Config) Validate() error {
	u, err := url.Parse(c.Issuer)
	switch {
	case c.Issuer == "":
		return errors.New("oidc: the issuer URL is required")
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		return fmt.Errorf("oidc: issuer %q is not an http(s) URL", c.Issuer)
	case c.ClientID == "":
		return errors.New("oidc: the client id is required")
	case c.RedirectURL == "":
		return errors.New("oidc: the redirect URL is required (the hub's public URL + /oidc/callback)")
	}
	return c.Mapping.compile()
}

// ErrToken is wrapped by the errors of tokens refused: a bad signature,
// another issuer or audience, an expired token, a malformed one.
var ErrToken = errors.New("token refused")

// Provider is a relying party of one OpenID provider. Discovery is done
// on first use and retried until it succeeds, so a hub starts while its
// provider is down.
type Provider struct {
	cfg Config

	mu         sync.Mutex
	p          *gooidc.Provider
	endSession string
	bearer     *gooidc.IDTokenVerifier
	limit      *keyFetchLimit
	ctx        context.Context // carries the HTTP client for go-oidc
}

// New returns a relying party; it does not reach the provider yet.
func New(cfg Config) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{"profile", "email", "offline_access"}
	}
	if cfg.APIAudience == "" {
		cfg.APIAudience = cfg.ClientID
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Name == "" {
		cfg.Name = "your institution"
	}
	if cfg.KeyRefetch <= 0 {
		cfg.KeyRefetch = 5 * time.Second
	}
	// The provider's key set is fetched through a limit (keyfetch.go).
	base := cfg.HTTPClient.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	limit := &keyFetchLimit{base: base, min: cfg.KeyRefetch, now: time.Now}
	hc := *cfg.HTTPClient
	hc.Transport = limit
	cfg.HTTPClient = &hc
	return &Provider{cfg: cfg, limit: limit, ctx: gooidc.ClientContext(context.Background(), cfg.HTTPClient)}, nil
}

// Name is the provider's name for the login page.
func (p *Provider) Name() string { return p.cfg.Name }

// Issuer is the provider's issuer URL.
func (p *Provider) Issuer() string { return p.cfg.Issuer }

// Discover reads the provider's metadata (once it succeeded, never
// again).
func (p *Provider) Discover(ctx context.Context) error {
	_, err := p.provider(ctx)
	return err
}

func (p *Provider) provider(ctx context.Context) (*gooidc.Provider, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.p != nil {
		return p.p, nil
	}
	dctx, cancel := context.WithTimeout(gooidc.ClientContext(ctx, p.cfg.HTTPClient), 10*time.Second)
	defer cancel()
	gp, err := gooidc.NewProvider(dctx, p.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc: discovery at %s failed: %w", p.cfg.Issuer, err)
	}
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
		JWKS       string `json:"jwks_uri"`
	}
	gp.Claims(&meta)
	p.limit.setURL(meta.JWKS)
	p.p, p.endSession = gp, meta.EndSession
	return gp, nil
}

func (p *Provider) oauth(gp *gooidc.Provider) *oauth2.Config {
	return &oauth2.Config{ClientID: p.cfg.ClientID, ClientSecret: p.cfg.ClientSecret, Endpoint: gp.Endpoint(),
		RedirectURL: p.cfg.RedirectURL, Scopes: append([]string{gooidc.ScopeOpenID}, p.cfg.Scopes...)}
}

// Start is what a login needs kept in the browser's state cookie.
type Start struct {
	State, Nonce, Verifier string
}

// NewStart makes a login's random state, nonce and PKCE verifier.
func NewStart() Start {
	return Start{State: random(24), Nonce: random(24), Verifier: oauth2.GenerateVerifier()}
}

// AuthURL is the provider's authorization URL for a login: code flow,
// PKCE with S256, state and nonce.
func (p *Provider) AuthURL(ctx context.Context, s Start) (string, error) {
	gp, err := p.provider(ctx)
	if err != nil {
		return "", err
	}
	return p.oauth(gp).AuthCodeURL(s.State, gooidc.Nonce(s.Nonce), oauth2.S256ChallengeOption(s.Verifier)), nil
}

// Login is the outcome of a login or a refresh: who it is and the
// provider's tokens the hub keeps for refresh and logout.
type Login struct {
	Identity
	// AccessExpiry is when the provider's access token expires: the hub
	// session refreshes after it.
	AccessExpiry time.Time
	RefreshToken string
	IDToken      string
}

// Exchange ends a login: it trades the code for tokens (with the PKCE
// verifier) and verifies the ID token (signature, issuer, audience =
// client id, expiry, and the nonce of this login).
func (p *Provider) Exchange(ctx context.Context, code string, s Start) (Login, error) {
	gp, err := p.provider(ctx)
	if err != nil {
		return Login{}, err
	}
	hctx := gooidc.ClientContext(ctx, p.cfg.HTTPClient)
	tok, err := p.oauth(gp).Exchange(hctx, code, oauth2.VerifierOption(s.Verifier))
	if err != nil {
		return Login{}, fmt.Errorf("oidc: the provider refused the code: %w", err)
	}
	return p.fromToken(hctx, gp, tok, s.Nonce, "")
}

// Refresh trades a refresh token for new tokens and maps the claims of
// the new ID token again. subject is the user's subject at login: a
// refresh for another subject is refused.
func (p *Provider) Refresh(ctx context.Context, refreshToken, subject string) (Login, error) {
	gp, err := p.provider(ctx)
	if err != nil {
		return Login{}, err
	}
	hctx := gooidc.ClientContext(ctx, p.cfg.HTTPClient)
	tok, err := p.oauth(gp).TokenSource(hctx, &oauth2.Token{RefreshToken: refreshToken, Expiry: time.Unix(1, 0)}).Token()
	if err != nil {
		return Login{}, fmt.Errorf("oidc: refresh refused: %w", err)
	}
	l, err := p.fromToken(hctx, gp, tok, "", subject)
	if err != nil {
		return Login{}, err
	}
	if l.RefreshToken == "" {
		l.RefreshToken = refreshToken
	}
	return l, nil
}

func (p *Provider) fromToken(ctx context.Context, gp *gooidc.Provider, tok *oauth2.Token, nonce, subject string) (Login, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Login{}, fmt.Errorf("%w: the provider sent no ID token", ErrToken)
	}
	v := gp.VerifierContext(ctx, &gooidc.Config{ClientID: p.cfg.ClientID, Now: p.cfg.Now})
	idt, err := v.Verify(ctx, raw)
	if err != nil {
		return Login{}, fmt.Errorf("%w: ID token: %v", ErrToken, err)
	}
	if nonce != "" && !equal(idt.Nonce, nonce) {
		return Login{}, fmt.Errorf("%w: the ID token's nonce is not this login's", ErrToken)
	}
	if subject != "" && idt.Subject != subject {
		return Login{}, fmt.Errorf("%w: the refreshed ID token is for another subject", ErrToken)
	}
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		return Login{}, fmt.Errorf("%w: ID token claims: %v", ErrToken, err)
	}
	id, err := p.cfg.Mapping.Map(idt.Issuer, idt.Subject, claims)
	if err != nil {
		return Login{}, err
	}
	exp := tok.Expiry
	if exp.IsZero() {
		exp = idt.Expiry
	}
	return Login{Identity: id, AccessExpiry: exp, RefreshToken: tok.RefreshToken, IDToken: raw}, nil
}

// VerifyBearer checks a provider's JWT (access token or ID token)
// presented by a script: signature by a key of the provider (fetched
// again when a token names a key id not seen yet, so key rotations are
// followed), issuer, audience (APIAudience) and expiry; then maps its
// claims.
func (p *Provider) VerifyBearer(ctx context.Context, token string) (Identity, error) {
	gp, err := p.provider(ctx)
	if err != nil {
		return Identity{}, err
	}
	v := p.bearerVerifier(gp)
	t, err := v.Verify(gooidc.ClientContext(ctx, p.cfg.HTTPClient), token)
	if err != nil {
		var exp *gooidc.TokenExpiredError
		if errors.As(err, &exp) {
			return Identity{}, fmt.Errorf("%w: the token expired at %s", ErrToken, exp.Expiry.UTC().Format(time.RFC3339))
		}
		msg := strings.TrimPrefix(err.Error(), "oidc: ")
		switch {
		case strings.Contains(msg, "issued by a different provider"):
			msg = "the token's issuer is not this hub's provider (" + p.cfg.Issuer + ")"
		case strings.Contains(msg, "expected audience"):
			msg = "the token's audience is not this hub (" + p.cfg.APIAudience + ")"
		case strings.Contains(msg, "signature"):
			msg = "the token's signature is not by a key of the provider"
		case strings.Contains(msg, "malformed"):
			msg = "the token is not a well-formed JWT"
		}
		return Identity{}, fmt.Errorf("%w: %s", ErrToken, msg)
	}
	claims := map[string]any{}
	if err := t.Claims(&claims); err != nil {
		return Identity{}, fmt.Errorf("%w: claims: %v", ErrToken, err)
	}
	return p.cfg.Mapping.Map(t.Issuer, t.Subject, claims)
}

// bearerVerifier is made once: its key set caches the provider's keys.
func (p *Provider) bearerVerifier(gp *gooidc.Provider) *gooidc.IDTokenVerifier {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bearer == nil {
		p.bearer = gp.VerifierContext(p.ctx, &gooidc.Config{ClientID: p.cfg.APIAudience, Now: p.cfg.Now})
	}
	return p.bearer
}

// LogoutURL is the provider's end-session URL for RP-initiated logout
// with the ID token as hint and postLogout to come back to, or "" when
// the provider has no end_session_endpoint.
func (p *Provider) LogoutURL(ctx context.Context, idToken, postLogout string) string {
	if _, err := p.provider(ctx); err != nil || p.endSession == "" {
		return ""
	}
	u, err := url.Parse(p.endSession)
	if err != nil {
		return ""
	}
	q := u.Query()
	if idToken != "" {
		q.Set("id_token_hint", idToken)
	}
	q.Set("client_id", p.cfg.ClientID)
	if postLogout != "" {
		q.Set("post_logout_redirect_uri", postLogout)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// LooksLikeJWT tells whether a bearer secret has the form of a JWT
// (three base64url parts), not of a hub token.
func LooksLikeJWT(s string) bool {
	if len(s) > 16<<10 || strings.Count(s, ".") != 2 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
