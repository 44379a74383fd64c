package oidc

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The device authorization grant (RFC 8628) as the hub serves it for its
// own API tokens, and as `mosaic login` uses it.

// CLIClientID is the client id of `mosaic login`.
const CLIClientID = "mosaic-cli"

// GrantDeviceCode is the grant type of the device grant's token request.
const GrantDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"

// userCodeAlphabet has no vowels (no words) and none of the letters
// easily taken for others (0/O, 1/I/L, 2/Z, 5/S, 8/B).
const userCodeAlphabet = "CDFGHJKMNPQRTVWX"

// NewUserCode is 8 letters of userCodeAlphabet shown as XXXX-XXXX
// (16^8, about 4.3 billion codes).
func NewUserCode() string {
	var b [8]byte
	rand.Read(b[:])
	out := make([]byte, 0, 9)
	for i, c := range b {
		if i == 4 {
			out = append(out, '-')
		}
		out = append(out, userCodeAlphabet[int(c)%len(userCodeAlphabet)])
	}
	return string(out)
}

// NormalizeUserCode reads a user code as people type it: case, spaces
// and dashes do not matter. ok is false when it cannot be a code.
func NormalizeUserCode(s string) (string, bool) {
	var b strings.Builder
	for _, c := range strings.ToUpper(s) {
		switch {
		case c == '-' || c == ' ':
		case strings.ContainsRune(userCodeAlphabet, c):
			b.WriteRune(c)
		default:
			return "", false
		}
	}
	if b.Len() != 8 {
		return "", false
	}
	v := b.String()
	return v[:4] + "-" + v[4:], true
}

// NewDeviceCode is a device code: 32 random bytes, base64url.
func NewDeviceCode() string { return random(32) }

// DeviceAuthorization is the answer of the device authorization
// endpoint.
type DeviceAuthorization struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int    `json:"expires_in"`
	Interval                int    `json:"interval"`
}

// TokenError is an OAuth error answer of the token endpoint.
type TokenError struct {
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func (e *TokenError) Error() string {
	if e.Description != "" {
		return e.Code + ": " + e.Description
	}
	return e.Code
}

// DeviceLogin runs the device grant against a hub: it asks for a code,
// calls show with it (to print the URL and the code), then polls the
// token endpoint at the interval the hub asks for (slower after
// slow_down) until the user approves (it returns the hub API token),
// denies, or the code expires.
func DeviceLogin(ctx context.Context, client *http.Client, hubURL string, show func(DeviceAuthorization)) (string, error) {
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	base := strings.TrimRight(hubURL, "/")
	var da DeviceAuthorization
	if err := postForm(ctx, client, base+"/oauth/device_authorization", url.Values{"client_id": {CLIClientID}}, &da); err != nil {
		return "", err
	}
	if da.DeviceCode == "" || da.UserCode == "" {
		return "", errors.New("the hub's answer has no device code")
	}
	show(da)
	interval := time.Duration(max(da.Interval, 1)) * time.Second
	deadline := time.Now().Add(time.Duration(max(da.ExpiresIn, 1)) * time.Second)
	for {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(interval):
		}
		var tok struct {
			AccessToken string `json:"access_token"`
			TokenType   string `json:"token_type"`
		}
		err := postForm(ctx, client, base+"/oauth/token", url.Values{"grant_type": {GrantDeviceCode}, "device_code": {da.DeviceCode}, "client_id": {CLIClientID}}, &tok)
		var te *TokenError
		switch {
		case err == nil && tok.AccessToken != "":
			return tok.AccessToken, nil
		case err == nil:
			return "", errors.New("the hub's answer has no token")
		case errors.As(err, &te) && te.Code == "authorization_pending":
		case errors.As(err, &te) && te.Code == "slow_down":
			interval += 5 * time.Second
		case errors.As(err, &te) && te.Code == "access_denied":
			return "", errors.New("the request was denied at the hub")
		case errors.As(err, &te) && te.Code == "expired_token":
			return "", errors.New("the code expired before it was approved: run mosaic login again")
		default:
			return "", err
		}
		if time.Now().After(deadline) {
			return "", errors.New("the code expired before it was approved: run mosaic login again")
		}
	}
}

func postForm(ctx context.Context, client *http.Client, u string, form url.Values, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("reaching the hub: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("reading the hub's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var te TokenError
		if json.Unmarshal(body, &te) == nil && te.Code != "" {
			return &te
		}
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return fmt.Errorf("the hub answered %s: %s", resp.Status, e.Error)
		}
		return fmt.Errorf("the hub answered %s", resp.Status)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("the hub's answer is not JSON: %w", err)
	}
	return nil
}

// RevokeToken asks the hub to end an API token (RFC 7009's revocation
// endpoint at /oauth/revoke).
func RevokeToken(ctx context.Context, client *http.Client, hubURL, token string) error {
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(hubURL, "/")+"/oauth/revoke",
		strings.NewReader(url.Values{"token": {token}, "client_id": {CLIClientID}}.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("reaching the hub: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the hub answered %s", resp.Status)
	}
	return nil
}

// Credentials are the CLI's stored hub tokens, by hub URL, in
// $XDG_CONFIG_HOME/mosaic/credentials.json (else
// ~/.config/mosaic/credentials.json): the file 0600 in a 0700 folder,
// replaced atomically.
type Credentials struct {
	Path string
}

// CredentialsFile finds the credentials file from the environment.
func CredentialsFile(getenv func(string) string) (Credentials, error) {
	dir := getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home := getenv("HOME")
		if home == "" {
			return Credentials{}, errors.New("neither XDG_CONFIG_HOME nor HOME is set: cannot place credentials.json")
		}
		dir = filepath.Join(home, ".config")
	}
	return Credentials{Path: filepath.Join(dir, "mosaic", "credentials.json")}, nil
}

// HubKey is how a hub URL is stored: no trailing slash, scheme and host
// in lowercase.
func HubKey(hubURL string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(hubURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return "", fmt.Errorf("hub URL %q: use http(s)://host[:port]", hubURL)
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host) + strings.TrimRight(u.Path, "/"), nil
}

type credFile struct {
	Hubs map[string]string `json:"hubs"`
}

func (c Credentials) read() (credFile, error) {
	f := credFile{Hubs: map[string]string{}}
	b, err := os.ReadFile(c.Path)
	if errors.Is(err, os.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return f, err
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("%s is not a credentials file: %v", c.Path, err)
	}
	if f.Hubs == nil {
		f.Hubs = map[string]string{}
	}
	return f, nil
}

func (c Credentials) write(f credFile) error {
	dir := filepath.Dir(c.Path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(f, "", "  ")
	tmp, err := os.CreateTemp(dir, ".credentials-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), c.Path)
}

// Token returns the stored token of a hub, or "" when there is none.
func (c Credentials) Token(hubURL string) (string, error) {
	k, err := HubKey(hubURL)
	if err != nil {
		return "", err
	}
	f, err := c.read()
	if err != nil {
		return "", err
	}
	return f.Hubs[k], nil
}

// Save stores a hub's token.
func (c Credentials) Save(hubURL, token string) error {
	k, err := HubKey(hubURL)
	if err != nil {
		return err
	}
	f, err := c.read()
	if err != nil {
		return err
	}
	f.Hubs[k] = token
	return c.write(f)
}

// Remove forgets a hub's token and returns it ("" when there was none).
func (c Credentials) Remove(hubURL string) (string, error) {
	k, err := HubKey(hubURL)
	if err != nil {
		return "", err
	}
	f, err := c.read()
	if err != nil {
		return "", err
	}
	tok, ok := f.Hubs[k]
	if !ok {
		return "", nil
	}
	delete(f.Hubs, k)
	return tok, c.write(f)
}

// StoredToken reads the token `mosaic login` stored for a hub URL, for
// other commands: "" when there is none.
func StoredToken(getenv func(string) string, hubURL string) (string, error) {
	c, err := CredentialsFile(getenv)
	if err != nil {
		return "", err
	}
	return c.Token(hubURL)
}
