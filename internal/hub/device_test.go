package hub_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/hub"
	"github.com/mosaic-imaging/mosaic/internal/oidc"
	"github.com/mosaic-imaging/mosaic/internal/sqldb/sqltest"
)

type deviceAnswer struct {
	oidc.DeviceAuthorization
	oidc.TokenError
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
}

func devicePost(t *testing.T, u string, form url.Values) (int, deviceAnswer) {
	t.Helper()
	r := uiDo(t, "POST", u, form, nil)
	var a deviceAnswer
	if err := json.Unmarshal([]byte(r.body), &a); err != nil {
		t.Fatalf("POST %s: %d, not JSON: %s", u, r.StatusCode, r.body)
	}
	return r.StatusCode, a
}

func deviceStart(t *testing.T, base string) oidc.DeviceAuthorization {
	t.Helper()
	st, a := devicePost(t, base+"/oauth/device_authorization", url.Values{"client_id": {oidc.CLIClientID}})
	if st != http.StatusOK {
		t.Fatalf("device authorization: %d %+v", st, a)
	}
	return a.DeviceAuthorization
}

func devicePoll(t *testing.T, base, device string) (int, deviceAnswer) {
	t.Helper()
	return devicePost(t, base+"/oauth/token", url.Values{"grant_type": {oidc.GrantDeviceCode}, "device_code": {device}, "client_id": {oidc.CLIClientID}})
}

var userCodeSyntax = regexp.MustCompile(`^[CDFGHJKMNPQRTVWX]{4}-[CDFGHJKMNPQRTVWX]{4}$`)

func TestDeviceGrant(t *testing.T) {
	f := oidcSetup(t, nil)
	base := f.url

	// Only the CLI's client.
	if st, a := devicePost(t, base+"/oauth/device_authorization", url.Values{"client_id": {"someone"}}); st != http.StatusUnauthorized || a.Code != "invalid_client" {
		t.Errorf("another client: %d %+v", st, a)
	}
	d := deviceStart(t, base)
	if !userCodeSyntax.MatchString(d.UserCode) || d.VerificationURI != base+"/device" || d.VerificationURIComplete != base+"/device?user_code="+d.UserCode ||
		d.ExpiresIn != 600 || d.Interval != 5 || len(d.DeviceCode) < 40 {
		t.Fatalf("device authorization: %+v", d)
	}
	// Waiting, then polling too fast.
	if st, a := devicePoll(t, base, d.DeviceCode); st != http.StatusBadRequest || a.Code != "authorization_pending" {
		t.Fatalf("first poll: %d %+v", st, a)
	}
	if st, a := devicePoll(t, base, d.DeviceCode); st != http.StatusBadRequest || a.Code != "slow_down" {
		t.Fatalf("a poll within the interval: %d %+v", st, a)
	}
	f.clock.add(11 * time.Second) // the interval grew to 10 s
	if st, a := devicePoll(t, base, d.DeviceCode); st != http.StatusBadRequest || a.Code != "authorization_pending" {
		t.Fatalf("a poll after the longer interval: %d %+v", st, a)
	}

	// /device needs a logged-in user.
	r := uiGet(t, d.VerificationURIComplete, "")
	if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/login?next=") {
		t.Fatalf("/device without login: %d to %s", r.StatusCode, r.Header.Get("Location"))
	}
	sess := uiLogin(t, f.srv, uiResearcher, uiResearcherPW)
	r = uiGet(t, base+"/device?user_code="+strings.ToLower(strings.ReplaceAll(d.UserCode, "-", "")), sess)
	uiWant(t, r, http.StatusOK, "mosaic-cli", d.UserCode, `id="device-approve"`)

	// A post from another site is refused, and approves nothing.
	r = uiDo(t, "POST", base+"/device", url.Values{"user_code": {d.UserCode}, "decision": {"approve"}},
		map[string]string{"Cookie": "mosaic_session=" + sess, "Sec-Fetch-Site": "cross-site"})
	if r.StatusCode != http.StatusForbidden {
		t.Fatalf("a cross-site approval: %d", r.StatusCode)
	}
	f.clock.add(11 * time.Second)
	if st, a := devicePoll(t, base, d.DeviceCode); st != http.StatusBadRequest || a.Code != "authorization_pending" {
		t.Fatalf("after a cross-site approval: %d %+v", st, a)
	}

	// Approved from the hub's own page: one token, once.
	r = uiPost(t, base+"/device", url.Values{"user_code": {d.UserCode}, "decision": {"approve"}}, sess)
	uiWant(t, r, http.StatusOK, "Approved")
	f.clock.add(11 * time.Second)
	st, a := devicePoll(t, base, d.DeviceCode)
	if st != http.StatusOK || !strings.HasPrefix(a.AccessToken, "mht_") || a.TokenType != "Bearer" {
		t.Fatalf("the poll after approval: %d %+v", st, a)
	}
	api := uiDo(t, "POST", base+"/api/v1/search", nil, map[string]string{"Authorization": "Bearer " + a.AccessToken})
	if api.StatusCode == http.StatusUnauthorized {
		t.Fatalf("the issued token is refused: %s", api.body)
	}
	f.clock.add(11 * time.Second)
	if st, a := devicePoll(t, base, d.DeviceCode); st != http.StatusBadRequest || a.Code != "invalid_grant" {
		t.Fatalf("a second poll of a used code: %d %+v", st, a)
	}
	// The approved code is no longer pending at /device.
	r = uiPost(t, base+"/device", url.Values{"user_code": {d.UserCode}, "decision": {"approve"}}, sess)
	if r.StatusCode != http.StatusNotFound {
		t.Errorf("approving a used code: %d", r.StatusCode)
	}
	acts := oidcAuditActions(t, f.data)
	if !slices.Contains(acts, "device-approved") || !slices.Contains(acts, "token-issued") {
		t.Errorf("audit actions %v lack device-approved and token-issued", acts)
	}

	// Denied.
	d2 := deviceStart(t, base)
	uiWant(t, uiPost(t, base+"/device", url.Values{"user_code": {d2.UserCode}, "decision": {"deny"}}, sess), http.StatusOK, "Denied")
	f.clock.add(6 * time.Second)
	if st, a := devicePoll(t, base, d2.DeviceCode); st != http.StatusBadRequest || a.Code != "access_denied" {
		t.Fatalf("a denied code: %d %+v", st, a)
	}
	// Expired.
	d3 := deviceStart(t, base)
	f.clock.add(11 * time.Minute)
	if st, a := devicePoll(t, base, d3.DeviceCode); st != http.StatusBadRequest || a.Code != "expired_token" {
		t.Fatalf("an expired code: %d %+v", st, a)
	}
	r = uiPost(t, base+"/device", url.Values{"user_code": {d3.UserCode}, "decision": {"approve"}}, sess)
	if r.StatusCode != http.StatusNotFound {
		t.Errorf("approving an expired code: %d", r.StatusCode)
	}
	// Unknown device codes, other grants.
	if st, a := devicePoll(t, base, strings.Repeat("x", 43)); st != http.StatusBadRequest || a.Code != "invalid_grant" {
		t.Errorf("an unknown device code: %d %+v", st, a)
	}
	if st, a := devicePost(t, base+"/oauth/token", url.Values{"grant_type": {"password"}, "client_id": {oidc.CLIClientID}}); st != http.StatusBadRequest || a.Code != "unsupported_grant_type" {
		t.Errorf("another grant: %d %+v", st, a)
	}
}

func TestDeviceGrantThrottles(t *testing.T) {
	f := oidcSetup(t, nil)
	base := f.url
	// Codes waiting for approval are bounded per address.
	for i := 0; i < 5; i++ {
		deviceStart(t, base)
	}
	if st, a := devicePost(t, base+"/oauth/device_authorization", url.Values{"client_id": {oidc.CLIClientID}}); st != http.StatusTooManyRequests {
		t.Errorf("a sixth pending code from one address: %d %+v", st, a)
	}
	// Wrong user codes: after 5 a user waits, and even the right code is
	// not looked at.
	sess := uiLogin(t, f.srv, uiResearcher, uiResearcherPW)
	f.clock.add(11 * time.Minute)
	d := deviceStart(t, base)
	for i := 0; i < 5; i++ {
		r := uiPost(t, base+"/device", url.Values{"user_code": {"CCCC-CCCC"}, "decision": {"approve"}}, sess)
		if r.StatusCode != http.StatusNotFound {
			t.Fatalf("wrong code %d: %d", i, r.StatusCode)
		}
	}
	r := uiPost(t, base+"/device", url.Values{"user_code": {d.UserCode}, "decision": {"approve"}}, sess)
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("the right code after 5 wrong ones: %d", r.StatusCode)
	}
	f.clock.add(2 * time.Second)
	uiWant(t, uiPost(t, base+"/device", url.Values{"user_code": {d.UserCode}, "decision": {"approve"}}, sess), http.StatusOK, "Approved")
}

func TestDeviceGrantForOIDCUser(t *testing.T) {
	// A user logged in through the provider approves a code too, and the
	// token acts for them.
	f := oidcSetup(t, nil)
	d := deviceStart(t, f.url)
	b := newOIDCBrowser(t)
	resp, page := b.login(t, f, "bob", "bob-pass", "/device?user_code="+d.UserCode)
	if resp.Request.URL.Path != "/device" || !strings.Contains(page, `id="device-approve"`) {
		t.Fatalf("after login: %s\n%s", resp.Request.URL, page)
	}
	resp, page = b.do(t, "POST", f.url+"/device", url.Values{"user_code": {d.UserCode}, "decision": {"approve"}}, map[string]string{"Sec-Fetch-Site": "same-origin"})
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Approved") {
		t.Fatalf("approval: %d\n%s", resp.StatusCode, page)
	}
	f.clock.add(6 * time.Second)
	st, a := devicePoll(t, f.url, d.DeviceCode)
	if st != http.StatusOK {
		t.Fatalf("poll: %d %+v", st, a)
	}
	if st, body := oidcAPI(t, f, a.AccessToken); st != http.StatusOK {
		t.Fatalf("bob's device token at an admin route: %d %s", st, body)
	}
}

func TestDeviceGrantOneTokenUnderConcurrentPolls(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { deviceConcurrentPolls(t, "") })
	// On PostgreSQL two polls may both read the approved code; only one
	// may turn it into a token.
	t.Run("postgres", func(t *testing.T) { deviceConcurrentPolls(t, sqltest.PostgresURL(t)) })
}

func deviceConcurrentPolls(t *testing.T, db string) {
	f := oidcSetup(t, func(c *hub.Config) { c.DB = db })
	d := deviceStart(t, f.url)
	sess := uiLogin(t, f.srv, uiResearcher, uiResearcherPW)
	uiWant(t, uiPost(t, f.url+"/device", url.Values{"user_code": {d.UserCode}, "decision": {"approve"}}, sess), http.StatusOK, "Approved")
	f.clock.add(6 * time.Second)
	type res struct {
		st int
		a  deviceAnswer
	}
	out := make(chan res, 16)
	for i := 0; i < 16; i++ {
		go func() {
			st, a := devicePoll(t, f.url, d.DeviceCode)
			out <- res{st, a}
		}()
	}
	tokens := 0
	for i := 0; i < 16; i++ {
		r := <-out
		switch {
		case r.st == http.StatusOK && r.a.AccessToken != "":
			tokens++
		case r.st == http.StatusBadRequest && (r.a.Code == "invalid_grant" || r.a.Code == "slow_down"):
		default:
			t.Errorf("a concurrent poll: %d %+v", r.st, r.a)
		}
	}
	if tokens != 1 {
		t.Fatalf("%d tokens for one approved code", tokens)
	}
}
