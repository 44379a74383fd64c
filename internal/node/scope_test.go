package node

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/index"
)

// TestTokenScopes tries each scope of token, for all datasets and for one,
// on each kind of endpoint: a token gets through only where its scope
// allows, and is refused with 403 and a JSON error elsewhere.
func TestTokenScopes(t *testing.T) {
	n, srv, _ := testNode(t, "sqlite")
	ctx := context.Background()
	if _, err := n.ix.CreateDataset(ctx, index.Dataset{ID: "brain", Title: "Brain"}); err != nil {
		t.Fatal(err)
	}
	toks := map[string]string{}
	for name, s := range map[string][2]string{
		"read": {index.ScopeRead, ""}, "write": {index.ScopeWrite, ""}, "admin": {index.ScopeAdmin, ""},
		"read-lung": {index.ScopeRead, "lung"}, "write-lung": {index.ScopeWrite, "lung"}, "admin-lung": {index.ScopeAdmin, "lung"},
	} {
		secret, _, err := n.ix.CreateToken(ctx, name, s[0], s[1])
		if err != nil {
			t.Fatal(err)
		}
		toks[name] = secret
	}
	all := "read write admin read-lung write-lung admin-lung"
	tests := []struct {
		kind, method, path, ctype, body string
		allowed                         string // the tokens that get through
	}{
		{"list datasets", "GET", "/api/v1/datasets", "", "", all},
		{"read dataset", "GET", "/api/v1/datasets/lung", "", "", all},
		{"read other dataset", "GET", "/api/v1/datasets/brain", "", "", "read write admin"},
		{"QIDO-RS", "GET", "/dicom-web/lung/studies", "", "", all},
		{"QIDO-RS other dataset", "GET", "/dicom-web/brain/series", "", "", "read write admin"},
		{"WADO-RS", "GET", "/dicom-web/lung/studies/1.2.3", "", "", all},
		{"WADO-RS metadata other dataset", "GET", "/dicom-web/brain/studies/1.2.3/metadata", "", "", "read write admin"},
		{"STOW-RS", "POST", "/dicom-web/lung/studies", "application/json", "{}", "write admin write-lung admin-lung"},
		{"STOW-RS other dataset", "POST", "/dicom-web/brain/studies", "application/json", "{}", "write admin"},
		{"create dataset", "POST", "/api/v1/datasets", "application/json", `{"unknown_field": 1}`, "admin"},
		{"change dataset", "PATCH", "/api/v1/datasets/lung", "application/json", `{"title": "Lung"}`, "admin admin-lung"},
		{"change other dataset", "PATCH", "/api/v1/datasets/brain", "application/json", `{"title": "Brain"}`, "admin"},
		{"delete dataset", "DELETE", "/api/v1/datasets/ghost", "", "", "admin"},
		{"disclosure control", "GET", "/api/v1/disclosure", "", "", "admin"},
		{"list tokens", "GET", "/api/v1/tokens", "", "", "admin"},
		{"create token", "POST", "/api/v1/tokens", "application/json", `{"scope": "read", "dataset": "lung"}`, "admin"},
		{"revoke token", "DELETE", "/api/v1/tokens/nosuchtoken", "", "", "admin"},
	}
	for _, tt := range tests {
		for name, secret := range toks {
			want := strings.Contains(" "+tt.allowed+" ", " "+name+" ")
			resp, b := do(t, tt.method, srv.URL+tt.path, secret, tt.ctype, []byte(tt.body), "")
			if got := resp.StatusCode != 403; got != want {
				t.Errorf("%s with a %s token: HTTP %d (%s); want allowed %v", tt.kind, name, resp.StatusCode, b, want)
				continue
			}
			if resp.StatusCode == 401 {
				t.Errorf("%s with a %s token: 401 %s", tt.kind, name, b)
			}
			if !want {
				var body map[string]string
				if json.Unmarshal(b, &body) != nil || body["error"] == "" || body["required_scope"] == "" || body["token_scope"] == "" {
					t.Errorf("%s with a %s token: 403 body %s", tt.kind, name, b)
				}
				if strings.HasSuffix(name, "-lung") && strings.Contains(tt.path, "brain") && !strings.Contains(body["error"], "for dataset lung only") {
					t.Errorf("%s with a %s token: error %q does not say the token is for another dataset", tt.kind, name, body["error"])
				}
			}
		}
	}
	// A token for one dataset lists only that one.
	resp, b := do(t, "GET", srv.URL+"/api/v1/datasets", toks["read-lung"], "", nil, "")
	var list struct{ Datasets []DatasetInfo }
	if resp.StatusCode != 200 || json.Unmarshal(b, &list) != nil || len(list.Datasets) != 1 || list.Datasets[0].ID != "lung" {
		t.Errorf("list with a token for lung: %d %s", resp.StatusCode, b)
	}
}

// TestTokenAPI: an admin token creates a scoped token through the API,
// which then works within its scope only, and revokes it.
func TestTokenAPI(t *testing.T) {
	_, srv, admin := testNode(t, "sqlite")
	resp, b := do(t, "POST", srv.URL+"/api/v1/tokens", admin, "application/json", []byte(`{"name": "viewer", "scope": "read", "dataset": "lung"}`), "")
	var created CreatedToken
	if resp.StatusCode != 201 || json.Unmarshal(b, &created) != nil || !strings.HasPrefix(created.Secret, "mnt_") ||
		created.Scope != index.ScopeRead || created.Dataset != "lung" || created.Name != "viewer" {
		t.Fatalf("create: %d %s", resp.StatusCode, b)
	}
	if resp, b := do(t, "GET", srv.URL+"/dicom-web/lung/studies", created.Secret, "", nil, ""); resp.StatusCode != 200 {
		t.Errorf("QIDO with the new token: %d %s", resp.StatusCode, b)
	}
	if resp, _ := do(t, "POST", srv.URL+"/dicom-web/lung/studies", created.Secret, "application/json", []byte("{}"), ""); resp.StatusCode != 403 {
		t.Errorf("STOW with the new read token: %d", resp.StatusCode)
	}
	for _, bad := range []string{`{"scope": "root"}`, `{"scope": "read", "dataset": "nope"}`, `{}`, `{"scope": "read", "admin": true}`} {
		if resp, b := do(t, "POST", srv.URL+"/api/v1/tokens", admin, "application/json", []byte(bad), ""); resp.StatusCode != 400 && resp.StatusCode != 404 {
			t.Errorf("create %s: %d %s", bad, resp.StatusCode, b)
		}
	}
	resp, b = do(t, "GET", srv.URL+"/api/v1/tokens", admin, "", nil, "")
	if resp.StatusCode != 200 || strings.Contains(string(b), created.Secret) || !strings.Contains(string(b), `"scope": "read"`) {
		t.Errorf("list: %d %s", resp.StatusCode, b)
	}
	if resp, b := do(t, "DELETE", srv.URL+"/api/v1/tokens/"+created.ID, admin, "", nil, ""); resp.StatusCode != 204 {
		t.Errorf("revoke: %d %s", resp.StatusCode, b)
	}
	if resp, _ := do(t, "GET", srv.URL+"/dicom-web/lung/studies", created.Secret, "", nil, ""); resp.StatusCode != 401 {
		t.Errorf("revoked token: %d", resp.StatusCode)
	}
}
