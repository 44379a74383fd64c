package hub_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// A real OpenID provider for the tests, in the test process over HTTP:
// zitadel's provider package with an in-memory op.Storage written here
// (users, one client, ES256 keys that can be rotated) and a minimal
// HTML login page.

type testOPUser struct {
	sub, username, password, email, name string
	groups                               []string
}

type testOPRequest struct {
	id       string
	req      *zoidc.AuthRequest
	subject  string
	authTime time.Time
	done     bool
}

func (a *testOPRequest) GetID() string                       { return a.id }
func (a *testOPRequest) GetACR() string                      { return "" }
func (a *testOPRequest) GetAMR() []string                    { return []string{"pwd"} }
func (a *testOPRequest) GetAudience() []string               { return []string{a.req.ClientID} }
func (a *testOPRequest) GetAuthTime() time.Time              { return a.authTime }
func (a *testOPRequest) GetClientID() string                 { return a.req.ClientID }
func (a *testOPRequest) GetNonce() string                    { return a.req.Nonce }
func (a *testOPRequest) GetRedirectURI() string              { return a.req.RedirectURI }
func (a *testOPRequest) GetResponseType() zoidc.ResponseType { return a.req.ResponseType }
func (a *testOPRequest) GetResponseMode() zoidc.ResponseMode { return a.req.ResponseMode }
func (a *testOPRequest) GetScopes() []string                 { return a.req.Scopes }
func (a *testOPRequest) GetState() string                    { return a.req.State }
func (a *testOPRequest) GetSubject() string                  { return a.subject }
func (a *testOPRequest) Done() bool                          { return a.done }
func (a *testOPRequest) GetCodeChallenge() *zoidc.CodeChallenge {
	if a.req.CodeChallenge == "" {
		return nil
	}
	return &zoidc.CodeChallenge{Challenge: a.req.CodeChallenge, Method: a.req.CodeChallengeMethod}
}

type testOPRefresh struct {
	subject, clientID string
	scopes            []string
	authTime          time.Time
}

func (r *testOPRefresh) GetAMR() []string            { return []string{"pwd"} }
func (r *testOPRefresh) GetAudience() []string       { return []string{r.clientID} }
func (r *testOPRefresh) GetAuthTime() time.Time      { return r.authTime }
func (r *testOPRefresh) GetClientID() string         { return r.clientID }
func (r *testOPRefresh) GetScopes() []string         { return r.scopes }
func (r *testOPRefresh) GetSubject() string          { return r.subject }
func (r *testOPRefresh) SetCurrentScopes(s []string) { r.scopes = s }

type testOPKey struct {
	id   string
	priv *ecdsa.PrivateKey
}

func (k *testOPKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.ES256 }
func (k *testOPKey) Key() any                                    { return k.priv }
func (k *testOPKey) ID() string                                  { return k.id }

type testOPPublic struct{ k *testOPKey }

func (p testOPPublic) ID() string                         { return p.k.id }
func (p testOPPublic) Algorithm() jose.SignatureAlgorithm { return jose.ES256 }
func (p testOPPublic) Use() string                        { return "sig" }
func (p testOPPublic) Key() any                           { return &p.k.priv.PublicKey }

type testOPClient struct {
	id, secret, redirect, postLogout, issuer string
}

func (c *testOPClient) GetID() string                       { return c.id }
func (c *testOPClient) RedirectURIs() []string              { return []string{c.redirect} }
func (c *testOPClient) PostLogoutRedirectURIs() []string    { return []string{c.postLogout} }
func (c *testOPClient) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c *testOPClient) AuthMethod() zoidc.AuthMethod        { return zoidc.AuthMethodBasic }
func (c *testOPClient) ResponseTypes() []zoidc.ResponseType {
	return []zoidc.ResponseType{zoidc.ResponseTypeCode}
}
func (c *testOPClient) LoginURL(id string) string            { return c.issuer + "/login?id=" + id }
func (c *testOPClient) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeJWT }
func (c *testOPClient) IDTokenLifetime() time.Duration       { return time.Hour }
func (c *testOPClient) DevMode() bool                        { return true }
func (c *testOPClient) IsScopeAllowed(string) bool           { return true }
func (c *testOPClient) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *testOPClient) ClockSkew() time.Duration             { return 0 }
func (c *testOPClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *testOPClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *testOPClient) GrantTypes() []zoidc.GrantType {
	return []zoidc.GrantType{zoidc.GrantTypeCode, zoidc.GrantTypeRefreshToken}
}

// testOP is the provider: its storage, HTTP server and what the tests
// look at afterwards.
type testOP struct {
	mu        sync.Mutex
	issuer    string
	client    *testOPClient
	users     map[string]*testOPUser // by username
	requests  map[string]*testOPRequest
	codes     map[string]string // code -> request id
	refresh   map[string]*testOPRefresh
	keys      []*testOPKey // published; keys[0] signs
	accessTTL time.Duration
	// what happened, for the tests
	terminated []string
	challenges []zoidc.CodeChallengeMethod
	refreshes  int
	keyFetches int
	// swapSubject, when set, makes refreshed tokens another user's (a
	// provider gone wrong).
	swapSubject string
	srv         *httptest.Server
}

const (
	testOPClientID     = "mosaic-hub"
	testOPClientSecret = "hub-secret-for-tests"
)

// newTestOP starts a provider whose one client is the hub at hubURL.
func newTestOP(t *testing.T, hubURL string) *testOP {
	t.Helper()
	o := &testOP{users: map[string]*testOPUser{}, requests: map[string]*testOPRequest{}, codes: map[string]string{},
		refresh: map[string]*testOPRefresh{}, accessTTL: 5 * time.Minute}
	o.rotate()
	mux := http.NewServeMux()
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/keys" {
			o.mu.Lock()
			o.keyFetches++
			o.mu.Unlock()
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(o.srv.Close)
	o.issuer = o.srv.URL
	o.client = &testOPClient{id: testOPClientID, secret: testOPClientSecret, redirect: hubURL + "/oidc/callback", postLogout: hubURL + "/", issuer: o.issuer}
	var key [32]byte
	copy(key[:], "mosaic test provider crypto key!")
	p, err := op.NewOpenIDProvider(o.issuer, &op.Config{CryptoKey: key, CodeMethodS256: true, GrantTypeRefreshToken: true, AuthMethodPost: true}, o, op.WithAllowInsecure())
	if err != nil {
		t.Fatal(err)
	}
	mux.HandleFunc("/login", o.login)
	mux.Handle("/", p)
	return o
}

func (o *testOP) addUser(u *testOPUser) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.users[u.username] = u
}

func (o *testOP) rename(username, to string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.users[username].username = to
}

func (o *testOP) setGroups(username string, groups ...string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.users[username].groups = groups
}

func (o *testOP) userBySub(sub string) *testOPUser {
	for _, u := range o.users {
		if u.sub == sub {
			return u
		}
	}
	return nil
}

// rotate publishes a new signing key and drops the others.
func (o *testOP) rotate() {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.keys = []*testOPKey{{id: fmt.Sprintf("key-%d", time.Now().UnixNano()), priv: priv}}
}

// mint signs claims with the provider's current key, as the provider
// signs its JWTs: for tokens the tests shape themselves (another
// audience, expired).
func (o *testOP) mint(t *testing.T, claims map[string]any) string {
	t.Helper()
	o.mu.Lock()
	k := o.keys[0]
	o.mu.Unlock()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.id}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

var testOPLoginPage = template.Must(template.New("login").Parse(`<!doctype html><html><head><title>Test provider</title></head><body>
<h1>Test provider</h1>{{if .Error}}<p id="error">{{.Error}}</p>{{end}}
<form method="post" action="/login"><input type="hidden" name="id" value="{{.ID}}">
<label>User <input id="username" name="username"></label>
<label>Password <input id="password" name="password" type="password"></label>
<button id="submit" type="submit">Sign in</button></form></body></html>`))

func (o *testOP) login(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		testOPLoginPage.Execute(w, map[string]string{"ID": r.URL.Query().Get("id")})
		return
	}
	r.ParseForm()
	id := r.PostForm.Get("id")
	o.mu.Lock()
	u := o.users[r.PostForm.Get("username")]
	req := o.requests[id]
	ok := u != nil && req != nil && u.password == r.PostForm.Get("password")
	if ok {
		req.subject, req.done, req.authTime = u.sub, true, time.Now()
	}
	o.mu.Unlock()
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		testOPLoginPage.Execute(w, map[string]string{"ID": id, "Error": "wrong user or password"})
		return
	}
	http.Redirect(w, r, o.issuer+"/authorize/callback?id="+id, http.StatusFound)
}

func testOPID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

type testOPNotFound struct{ error }

func (testOPNotFound) IsNotFound() {}

// op.Storage

func (o *testOP) CreateAuthRequest(_ context.Context, req *zoidc.AuthRequest, _ string) (op.AuthRequest, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	a := &testOPRequest{id: testOPID(), req: req}
	o.requests[a.id] = a
	o.challenges = append(o.challenges, req.CodeChallengeMethod)
	return a, nil
}

func (o *testOP) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if a := o.requests[id]; a != nil {
		return a, nil
	}
	return nil, testOPNotFound{errors.New("no such request")}
}

func (o *testOP) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if a := o.requests[o.codes[code]]; a != nil {
		return a, nil
	}
	return nil, testOPNotFound{errors.New("no such code")}
}

func (o *testOP) SaveAuthCode(_ context.Context, id, code string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.codes[code] = id
	return nil
}

func (o *testOP) DeleteAuthRequest(_ context.Context, id string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.requests, id)
	for c, r := range o.codes {
		if r == id {
			delete(o.codes, c)
		}
	}
	return nil
}

func (o *testOP) CreateAccessToken(context.Context, op.TokenRequest) (string, time.Time, error) {
	return testOPID(), time.Now().Add(o.accessTTL), nil
}

func (o *testOP) CreateAccessAndRefreshTokens(_ context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	rt := &testOPRefresh{subject: req.GetSubject(), scopes: req.GetScopes(), authTime: time.Now(), clientID: o.client.id}
	if current != "" {
		old := o.refresh[current]
		if old == nil {
			return "", "", time.Time{}, errors.New("refresh token unknown")
		}
		delete(o.refresh, current) // rotation: one use each
		rt = old
		if o.swapSubject != "" {
			rt.subject = o.swapSubject
		}
		o.refreshes++
	}
	tok := testOPID()
	o.refresh[tok] = rt
	return testOPID(), tok, time.Now().Add(o.accessTTL), nil
}

func (o *testOP) TokenRequestByRefreshToken(_ context.Context, tok string) (op.RefreshTokenRequest, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if r := o.refresh[tok]; r != nil {
		return r, nil
	}
	return nil, op.ErrInvalidRefreshToken
}

// revokeRefresh drops every refresh token of a user (an account closed
// at the provider).
func (o *testOP) revokeRefresh(sub string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for k, r := range o.refresh {
		if r.subject == sub {
			delete(o.refresh, k)
		}
	}
}

func (o *testOP) TerminateSession(_ context.Context, userID, _ string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.terminated = append(o.terminated, userID)
	return nil
}

func (o *testOP) RevokeToken(_ context.Context, tok, _, _ string) *zoidc.Error {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.refresh, tok)
	return nil
}

func (o *testOP) GetRefreshTokenInfo(_ context.Context, _ string, tok string) (string, string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if r := o.refresh[tok]; r != nil {
		return r.subject, tok, nil
	}
	return "", "", op.ErrInvalidRefreshToken
}

func (o *testOP) SigningKey(context.Context) (op.SigningKey, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.keys[0], nil
}

func (o *testOP) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.ES256}, nil
}

func (o *testOP) KeySet(context.Context) ([]op.Key, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []op.Key
	for _, k := range o.keys {
		out = append(out, testOPPublic{k})
	}
	return out, nil
}

func (o *testOP) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	if id != o.client.id {
		return nil, testOPNotFound{errors.New("no such client")}
	}
	return o.client, nil
}

func (o *testOP) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	if id != o.client.id || secret != o.client.secret {
		return errors.New("wrong client secret")
	}
	return nil
}

func (o *testOP) setUserinfo(info *zoidc.UserInfo, sub string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	u := o.userBySub(sub)
	if u == nil {
		return errors.New("no such user")
	}
	info.Subject = sub
	info.Email, info.EmailVerified = u.email, true
	info.Name = u.name
	info.PreferredUsername = u.username
	info.AppendClaims("groups", slices.Clone(u.groups))
	return nil
}

func (o *testOP) SetUserinfoFromScopes(_ context.Context, info *zoidc.UserInfo, sub, _ string, _ []string) error {
	return o.setUserinfo(info, sub)
}

func (o *testOP) SetUserinfoFromToken(_ context.Context, info *zoidc.UserInfo, _, sub, _ string) error {
	return o.setUserinfo(info, sub)
}

func (o *testOP) SetIntrospectionFromToken(context.Context, *zoidc.IntrospectionResponse, string, string, string) error {
	return errors.New("no introspection")
}

func (o *testOP) GetPrivateClaimsFromScopes(_ context.Context, sub, _ string, _ []string) (map[string]any, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	u := o.userBySub(sub)
	if u == nil {
		return nil, errors.New("no such user")
	}
	return map[string]any{"groups": slices.Clone(u.groups), "email": u.email, "email_verified": true, "name": u.name}, nil
}

func (o *testOP) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("no JWT profile")
}

func (o *testOP) ValidateJWTProfileScopes(_ context.Context, _ string, s []string) ([]string, error) {
	return s, nil
}

func (o *testOP) Health(context.Context) error { return nil }
