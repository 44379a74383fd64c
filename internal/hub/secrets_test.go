package hub

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
)

// TestHubNATSPassword: the hub's own NATS credentials are admitted, and
// a wrong password of the same length is refused.
func TestHubNATSPassword(t *testing.T) {
	h, _, _ := testHub(t)
	wrong := []byte(h.hubPass)
	wrong[len(wrong)-1] ^= 1
	for _, c := range []struct {
		pass string
		ok   bool
	}{{h.hubPass, true}, {string(wrong), false}, {"", false}} {
		nc, err := nats.Connect(h.NATSURL(), nats.UserInfo(h.hubUser, c.pass), nats.MaxReconnects(0), nodeTLS(t, h, h.key))
		if (err == nil) != c.ok {
			t.Errorf("password of %d bytes (right: %v): connect error %v", len(c.pass), c.ok, err)
		}
		if nc != nil {
			nc.Close()
		}
	}
}

// secretName matches identifiers that hold secrets.
var secretName = regexp.MustCompile(`(?i)(pass|secret|token|hash)`)

// TestSecretsComparedInConstantTime reads the hub's and the node's
// sources: a secret is never compared with == or != (which returns at
// the first differing byte) but with crypto/subtle, except against the
// empty string.
func TestSecretsComparedInConstantTime(t *testing.T) {
	for _, dir := range []string{".", "../node", "../index", "../fed"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		fset := token.NewFileSet()
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				b, ok := n.(*ast.BinaryExpr)
				if !ok || (b.Op != token.EQL && b.Op != token.NEQ) {
					return true
				}
				if isEmptyOrConst(b.X) || isEmptyOrConst(b.Y) {
					return true
				}
				if secretName.MatchString(exprName(b.X)) || secretName.MatchString(exprName(b.Y)) {
					t.Errorf("%s: a secret compared with %s; use crypto/subtle.ConstantTimeCompare", fset.Position(b.Pos()), b.Op)
				}
				return true
			})
		}
	}
}

func exprName(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return e.Sel.Name
	}
	return ""
}

// isEmptyOrConst reports literals, nil and named constants (KindToken).
func isEmptyOrConst(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.BasicLit:
		return true
	case *ast.Ident:
		return e.Name == "nil" || (e.Obj != nil && e.Obj.Kind == ast.Con) || strings.HasPrefix(e.Name, "Kind")
	}
	return false
}
