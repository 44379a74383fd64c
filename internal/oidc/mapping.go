package oidc

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Roles a mapping may give (the hub's role names).
const (
	RoleAdmin          = "admin"
	RoleResearcher     = "researcher"
	RoleRepresentative = "representative"
)

// Mapping turns a provider's claims into a hub user.
type Mapping struct {
	// UserClaim names a claim whose value becomes the hub user id (for
	// example "preferred_username"); it must fit the hub's user id
	// syntax. Empty (the default, and the safe choice with a provider
	// shared by many organisations): the id is derived from the issuer
	// and the subject, "oidc-" and 26 letters and digits.
	UserClaim string `json:"user_claim"`
	// RoleClaim names the claim (a string or a list of strings) the
	// rules look at: "eduperson_entitlement" for Life Science Login,
	// "groups" for Keycloak.
	RoleClaim string `json:"role_claim"`
	// Rules give roles and representations for values of RoleClaim.
	Rules []Rule `json:"rules"`
	// DefaultRole is the role of a user no rule gives one: "researcher",
	// or "" to refuse such users.
	DefaultRole string `json:"default_role"`

	compiled []compiledRule
}

// Rule maps values of the role claim. Value is either an exact value or
// a pattern with the placeholders {node} and {dataset}: a match makes
// the user a representative of that dataset of that node ({dataset}
// matching "*" or a missing {dataset}: every dataset of the node).
type Rule struct {
	Value string `json:"value"`
	// Role is admin, researcher or representative; a rule with
	// placeholders gives representative when it names no role.
	Role string `json:"role"`
}

type compiledRule struct {
	Rule
	re *regexp.Regexp // nil for an exact value
}

// The placeholders match the node and dataset id syntax of the
// federation (fed.ValidNodeID, index.ValidDatasetID).
var (
	nodePart    = `(?P<node>[a-z0-9][a-z0-9-]{0,62})`
	datasetPart = `(?P<dataset>\*|[a-z0-9][a-z0-9-]{0,62})`
)

func (m *Mapping) compile() error {
	if m.compiled != nil || len(m.Rules) == 0 {
		return m.checkDefault()
	}
	out := make([]compiledRule, 0, len(m.Rules))
	for _, r := range m.Rules {
		c := compiledRule{Rule: r}
		if r.Value == "" {
			return errors.New("oidc: a mapping rule without a value")
		}
		if strings.Contains(r.Value, "{node}") {
			if c.Role == "" {
				c.Role = RoleRepresentative
			}
			if strings.Count(r.Value, "{node}") != 1 || strings.Count(r.Value, "{dataset}") > 1 {
				return fmt.Errorf("oidc: rule %q: {node} once, {dataset} at most once", r.Value)
			}
			p := regexp.QuoteMeta(r.Value)
			p = strings.Replace(p, `\{node\}`, nodePart, 1)
			p = strings.Replace(p, `\{dataset\}`, datasetPart, 1)
			re, err := regexp.Compile("^" + p + "$")
			if err != nil {
				return fmt.Errorf("oidc: rule %q: %v", r.Value, err)
			}
			c.re = re
		} else if strings.Contains(r.Value, "{dataset}") {
			return fmt.Errorf("oidc: rule %q: {dataset} needs {node}", r.Value)
		}
		switch c.Role {
		case RoleAdmin, RoleResearcher, RoleRepresentative:
		default:
			return fmt.Errorf("oidc: rule %q: role %q: use admin, researcher or representative", r.Value, r.Role)
		}
		if c.Role == RoleRepresentative && c.re == nil {
			return fmt.Errorf("oidc: rule %q: a representative rule names its node with {node}", r.Value)
		}
		out = append(out, c)
	}
	if m.RoleClaim == "" {
		return errors.New("oidc: mapping rules need role_claim (for example eduperson_entitlement or groups)")
	}
	m.compiled = out
	return m.checkDefault()
}

func (m *Mapping) checkDefault() error {
	switch m.DefaultRole {
	case "", RoleResearcher:
		return nil
	}
	return fmt.Errorf("oidc: default role %q: use researcher or nothing", m.DefaultRole)
}

// Representation is a dataset of a node ("*": every dataset of it).
type Representation struct {
	Node    string `json:"node"`
	Dataset string `json:"dataset"`
}

// Identity is a hub user as a provider's claims describe them.
type Identity struct {
	// UserID is the hub user id.
	UserID string
	// Issuer and Subject name the user at the provider; Issuer is the
	// account's origin at the hub.
	Issuer, Subject string
	Email, Name     string
	// Role is admin, researcher or representative.
	Role string
	// Representations are the datasets the user represents.
	Representations []Representation
}

// ErrNoRole is wrapped by the error of a user no rule gives a role, when
// there is no default role.
var ErrNoRole = errors.New("oidc: no role for this account")

var hubUserID = regexp.MustCompile(`^[a-z0-9][a-z0-9._@-]{0,63}$`)

// UserID derives the hub user id of a provider's subject: "oidc-" and
// 26 base32 characters of SHA-256(issuer, subject), the same at every
// login, never the same for two subjects or two issuers in practice,
// and in the hub's user id syntax whatever the subject holds.
func UserID(issuer, subject string) string {
	h := sha256.Sum256([]byte(issuer + "\x00" + subject))
	return "oidc-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(h[:16]))
}

// Map turns claims into an Identity.
func (m *Mapping) Map(issuer, subject string, claims map[string]any) (Identity, error) {
	if err := m.compile(); err != nil {
		return Identity{}, err
	}
	if subject == "" {
		return Identity{}, fmt.Errorf("%w: no subject", ErrToken)
	}
	id := Identity{Issuer: issuer, Subject: subject, UserID: UserID(issuer, subject)}
	if m.UserClaim != "" {
		v, _ := claims[m.UserClaim].(string)
		v = strings.ToLower(strings.TrimSpace(v))
		if !hubUserID.MatchString(v) {
			return Identity{}, fmt.Errorf("oidc: claim %s is missing or not a user name the hub accepts (lowercase letters, digits and . _ @ -, at most 64)", m.UserClaim)
		}
		id.UserID = v
	}
	if e, _ := claims["email"].(string); e != "" {
		if v, ok := claims["email_verified"].(bool); !ok || v {
			id.Email = e
		}
	}
	if n, _ := claims["name"].(string); n != "" && len(n) <= 200 {
		id.Name = n
	}
	var values []string
	switch v := claims[m.RoleClaim].(type) {
	case string:
		values = []string{v}
	case []any:
		for _, x := range v {
			if s, ok := x.(string); ok {
				values = append(values, s)
			}
		}
	}
	admin, researcher := false, false
	reps := map[Representation]bool{}
	for _, v := range values {
		for _, r := range m.compiled {
			if r.re == nil {
				if v != r.Value {
					continue
				}
				switch r.Role {
				case RoleAdmin:
					admin = true
				case RoleResearcher:
					researcher = true
				}
				continue
			}
			sm := r.re.FindStringSubmatch(v)
			if sm == nil {
				continue
			}
			rep := Representation{Node: sm[r.re.SubexpIndex("node")], Dataset: "*"}
			if i := r.re.SubexpIndex("dataset"); i > 0 && sm[i] != "" {
				rep.Dataset = sm[i]
			}
			reps[rep] = true
			switch r.Role {
			case RoleAdmin:
				admin = true
			case RoleResearcher:
				researcher = true
			}
		}
	}
	for r := range reps {
		id.Representations = append(id.Representations, r)
	}
	sort.Slice(id.Representations, func(i, j int) bool {
		a, b := id.Representations[i], id.Representations[j]
		return a.Node < b.Node || a.Node == b.Node && a.Dataset < b.Dataset
	})
	switch {
	case admin:
		id.Role = RoleAdmin
	case researcher:
		id.Role = RoleResearcher
	case len(id.Representations) > 0:
		id.Role = RoleRepresentative
	case m.DefaultRole != "":
		id.Role = m.DefaultRole
	default:
		return Identity{}, fmt.Errorf("%w: the provider's claims give this account no role at this hub (claim %s); ask the hub's operator", ErrNoRole, m.RoleClaim)
	}
	return id, nil
}

func random(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
