package oidc

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// Life Science Login entitlements and Keycloak groups, as docs/oidc.md
// shows them.
var lsMapping = Mapping{RoleClaim: "eduperson_entitlement", Rules: []Rule{
	{Value: "urn:geant:lifescience-ri.eu:group:mosaic:admins#aai.lifescience-ri.eu", Role: RoleAdmin},
	{Value: "urn:geant:lifescience-ri.eu:group:mosaic:researchers#aai.lifescience-ri.eu", Role: RoleResearcher},
	{Value: "urn:geant:lifescience-ri.eu:group:mosaic:nodes:{node}:{dataset}#aai.lifescience-ri.eu"},
}}

func TestMapping(t *testing.T) {
	m := lsMapping
	if err := m.compile(); err != nil {
		t.Fatal(err)
	}
	ent := func(v ...string) map[string]any {
		out := []any{}
		for _, s := range v {
			out = append(out, s)
		}
		return map[string]any{"eduperson_entitlement": out, "email": "r@uni.example", "email_verified": true, "name": "R"}
	}
	const pre, post = "urn:geant:lifescience-ri.eu:group:mosaic:", "#aai.lifescience-ri.eu"
	for _, c := range []struct {
		name   string
		claims map[string]any
		role   string
		reps   []Representation
	}{
		{"researcher", ent(pre + "researchers" + post), RoleResearcher, nil},
		{"admin beats researcher", ent(pre+"researchers"+post, pre+"admins"+post), RoleAdmin, nil},
		{"representative", ent(pre+"nodes:north:lung-ct"+post, pre+"nodes:south:*"+post), RoleRepresentative,
			[]Representation{{"north", "lung-ct"}, {"south", "*"}}},
		{"researcher who represents", ent(pre+"researchers"+post, pre+"nodes:north:lung-ct"+post), RoleResearcher,
			[]Representation{{"north", "lung-ct"}}},
		{"a pattern's prefix only", ent(pre + "nodes:north:lung-ct" + post + "x"), "", nil},
		{"a node id of another syntax", ent(pre + "nodes:North_1:x" + post), "", nil},
		{"a dataset id of another syntax", ent(pre + "nodes:north:Lung.CT" + post), "", nil},
		{"a single string claim", map[string]any{"eduperson_entitlement": pre + "researchers" + post}, RoleResearcher, nil},
		{"nothing", map[string]any{}, "", nil},
	} {
		id, err := m.Map("https://login.example", "sub-1", c.claims)
		if c.role == "" {
			if !errors.Is(err, ErrNoRole) {
				t.Errorf("%s: %+v, %v; want ErrNoRole", c.name, id, err)
			}
			continue
		}
		if err != nil || id.Role != c.role || !reflect.DeepEqual(id.Representations, c.reps) {
			t.Errorf("%s: role %q reps %v (%v); want %q %v", c.name, id.Role, id.Representations, err, c.role, c.reps)
		}
	}
	// A default role for everyone else.
	d := lsMapping
	d.DefaultRole = RoleResearcher
	if id, err := d.Map("https://login.example", "s", map[string]any{}); err != nil || id.Role != RoleResearcher {
		t.Errorf("default role: %+v %v", id, err)
	}
	// E-mail only when verified (or when the provider says nothing).
	id, _ := m.Map("https://login.example", "s", map[string]any{"eduperson_entitlement": pre + "researchers" + post, "email": "x@y.example", "email_verified": false})
	if id.Email != "" {
		t.Errorf("an unverified e-mail was taken: %q", id.Email)
	}
}

func TestMappingKeycloakGroups(t *testing.T) {
	m := Mapping{RoleClaim: "groups", Rules: []Rule{{Value: "/mosaic/admins", Role: RoleAdmin}, {Value: "/mosaic/nodes/{node}"}}}
	id, err := m.Map("https://kc.example/realms/x", "s", map[string]any{"groups": []any{"/mosaic/nodes/east-clinic", "/other"}})
	if err != nil || id.Role != RoleRepresentative || !reflect.DeepEqual(id.Representations, []Representation{{"east-clinic", "*"}}) {
		t.Fatalf("%+v %v", id, err)
	}
}

func TestMappingRefusesBadRules(t *testing.T) {
	for _, m := range []Mapping{
		{RoleClaim: "g", Rules: []Rule{{Value: "x", Role: "superuser"}}},
		{RoleClaim: "g", Rules: []Rule{{Value: "x", Role: RoleRepresentative}}},
		{RoleClaim: "g", Rules: []Rule{{Value: "{dataset}"}}},
		{RoleClaim: "g", Rules: []Rule{{Value: "{node}{node}"}}},
		{RoleClaim: "g", Rules: []Rule{{Value: ""}}},
		{Rules: []Rule{{Value: "x", Role: RoleAdmin}}},
		{DefaultRole: RoleAdmin},
	} {
		if err := m.compile(); err == nil {
			t.Errorf("%+v: accepted", m)
		}
	}
}

func TestUserIDs(t *testing.T) {
	hubID := regexp.MustCompile(`^[a-z0-9][a-z0-9._@-]{0,63}$`)
	a, b := UserID("https://a.example", "1"), UserID("https://b.example", "1")
	if a == b || a != UserID("https://a.example", "1") || !hubID.MatchString(a) || UserID("https://a.example", "1\x00") == a {
		t.Fatalf("user ids %q %q", a, b)
	}
	if id := UserID("https://a.example", strings.Repeat("ü/../", 100)); !hubID.MatchString(id) {
		t.Fatalf("%q", id)
	}
	m := Mapping{UserClaim: "preferred_username", DefaultRole: RoleResearcher}
	for v, ok := range map[string]bool{"Alice": true, "../admin": false, "": false, "a b": false, strings.Repeat("a", 65): false} {
		id, err := m.Map("https://a.example", "s", map[string]any{"preferred_username": v})
		if ok != (err == nil) || ok && id.UserID != strings.ToLower(v) {
			t.Errorf("user claim %q: %+v %v", v, id, err)
		}
	}
}

func TestUserCodes(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		c := NewUserCode()
		n, ok := NormalizeUserCode(strings.ToLower(strings.ReplaceAll(c, "-", " ")))
		if !ok || n != c || seen[c] {
			t.Fatalf("code %q read back as %q %v", c, n, ok)
		}
		seen[c] = true
	}
	for _, bad := range []string{"", "ABCD-EFGH", "CCCC-CCC", "CCCC-CCCCC", "CCCC-CCC0"} {
		if _, ok := NormalizeUserCode(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestCredentials(t *testing.T) {
	dir := t.TempDir()
	getenv := func(k string) string {
		if k == "HOME" {
			return dir
		}
		return ""
	}
	c, err := CredentialsFile(getenv)
	if err != nil || c.Path != filepath.Join(dir, ".config", "mosaic", "credentials.json") {
		t.Fatalf("%+v %v", c, err)
	}
	if err := c.Save("HTTPS://Hub.Example/", "mht_one"); err != nil {
		t.Fatal(err)
	}
	if err := c.Save("http://other.example:8080", "mht_two"); err != nil {
		t.Fatal(err)
	}
	if tok, _ := StoredToken(getenv, "https://hub.example"); tok != "mht_one" {
		t.Errorf("token %q", tok)
	}
	fi, _ := os.Stat(c.Path)
	di, _ := os.Stat(filepath.Dir(c.Path))
	if fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700 {
		t.Errorf("modes %v %v", fi.Mode().Perm(), di.Mode().Perm())
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(c.Path), ".credentials-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if tok, err := c.Remove("https://hub.example"); err != nil || tok != "mht_one" {
		t.Errorf("remove: %q %v", tok, err)
	}
	if tok, _ := c.Token("http://other.example:8080/"); tok != "mht_two" {
		t.Errorf("the other hub's token: %q", tok)
	}
	if _, err := HubKey("ftp://x"); err == nil {
		t.Error("ftp URL accepted")
	}
	os.WriteFile(c.Path, []byte("not json"), 0o600)
	if _, err := c.Token("https://hub.example"); err == nil {
		t.Error("a broken file read without error")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{
		{},
		{Issuer: "not a url", ClientID: "c", RedirectURL: "http://h/oidc/callback"},
		{Issuer: "https://op.example", RedirectURL: "http://h/oidc/callback"},
		{Issuer: "https://op.example", ClientID: "c"},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if !LooksLikeJWT("aaa.bbb.ccc") || LooksLikeJWT("mht_abc") || LooksLikeJWT("a.b") || LooksLikeJWT("a.b.c d") {
		t.Error("LooksLikeJWT")
	}
}
