package hub_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/hub"
	"github.com/mosaic-imaging/mosaic/internal/node"
	"github.com/mosaic-imaging/mosaic/internal/testutil"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// tlsHub opens a hub with cfg (data directory, loopback NATS and a quiet
// log filled in) and serves its HTTP interface.
func tlsHub(t *testing.T, cfg hub.Config) (*hub.Hub, *httptest.Server) {
	t.Helper()
	if cfg.Data == "" {
		cfg.Data = t.TempDir()
	}
	if cfg.NATSListen == "" {
		cfg.NATSListen = "127.0.0.1:0"
	}
	cfg.Log = quiet
	h, err := hub.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h.Handler())
	t.Cleanup(func() { srv.Close(); h.Close() })
	return h, srv
}

// enrolNode opens a node with cfg and enrols it as name.
func enrolNode(t *testing.T, h *hub.Hub, srv *httptest.Server, name string, cfg node.Config) *node.Node {
	t.Helper()
	ctx := context.Background()
	cfg.Data, cfg.Log = t.TempDir(), quiet
	n, err := node.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	tok, err := h.AddNode(ctx, name, name, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Enroll(ctx, srv.URL, tok, "test"); err != nil {
		t.Fatal(err)
	}
	return n
}

func startLink(t *testing.T, n *node.Node) *node.Link {
	t.Helper()
	l, err := n.StartLink(node.LinkOptions{Heartbeat: 100 * time.Millisecond, Version: "test"})
	if err != nil || l == nil {
		t.Fatalf("link: %v", err)
	}
	t.Cleanup(l.Close)
	return l
}

// online waits up to d for the hub to see node online.
func online(t *testing.T, h *hub.Hub, name string, d time.Duration) bool {
	t.Helper()
	return testutil.Poll(d, func() error {
		infos, err := h.NodeInfos(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range infos {
			if i.ID == name && i.Status == "online" {
				return nil
			}
		}
		return fmt.Errorf("%s is not online", name)
	}) == nil
}

// TestNodeLinkOverTLS: by default enrolment hands out a tls:// address
// and the certificate to pin, and the node's link comes up over TLS.
func TestNodeLinkOverTLS(t *testing.T) {
	h, srv := tlsHub(t, hub.Config{})
	n := enrolNode(t, h, srv, "north", node.Config{})
	f, _, err := n.LoadFederation()
	if err != nil {
		t.Fatal(err)
	}
	if len(f.NATSURLs) != 1 || !strings.HasPrefix(f.NATSURLs[0], "tls://") || !strings.Contains(f.NATSCA, "BEGIN CERTIFICATE") {
		t.Fatalf("enrolment: urls %v, pinned certificate %q", f.NATSURLs, f.NATSCA)
	}
	// A client that does not speak TLS gets nowhere.
	plain := "nats://" + strings.TrimPrefix(f.NATSURLs[0], "tls://")
	if nc, err := nats.Connect(plain, nats.UserInfo(f.NATSUser, f.NATSPassword), nats.MaxReconnects(0),
		nats.Secure(nil)); err == nil {
		nc.Close()
		t.Error("a connection trusting the system's roots was admitted")
	}
	startLink(t, n)
	if !online(t, h, "north", 10*time.Second) {
		t.Fatal("the node did not come online over TLS")
	}
}

// TestNodeWrongPinnedCertificate: a node that pins another hub's
// certificate does not connect.
func TestNodeWrongPinnedCertificate(t *testing.T) {
	h, srv := tlsHub(t, hub.Config{})
	other, _ := tlsHub(t, hub.Config{})
	if h.NATSCA() == other.NATSCA() {
		t.Fatal("two hubs made the same CA")
	}
	n := enrolNode(t, h, srv, "north", node.Config{})
	if err := n.UpdateFederation(func(f *node.Federation) { f.NATSCA = other.NATSCA() }); err != nil {
		t.Fatal(err)
	}
	l := startLink(t, n)
	if online(t, h, "north", 3*time.Second) || l.Connected() {
		t.Fatal("a node pinning another certificate connected")
	}
}

// TestNATSMutualTLS: with nats_mtls a connection with the node's
// password is admitted only when its certificate carries the key the
// node enrolled with.
func TestNATSMutualTLS(t *testing.T) {
	for _, mtls := range []bool{false, true} {
		h, srv := tlsHub(t, hub.Config{NATSMTLS: mtls})
		n := enrolNode(t, h, srv, "north", node.Config{})
		f, _, _ := n.LoadFederation()
		_, otherKey, _ := ed25519.GenerateKey(nil)
		tc, err := fed.ClientTLS(f.NATSCA, otherKey, "north")
		if err != nil {
			t.Fatal(err)
		}
		nc, err := nats.Connect(f.NATSURLs[0], nats.UserInfo(f.NATSUser, f.NATSPassword), nats.MaxReconnects(0), nats.Secure(tc))
		if nc != nil {
			nc.Close()
		}
		if admitted := err == nil; admitted == mtls {
			t.Errorf("mtls %v: a certificate of another key admitted: %v", mtls, admitted)
		}
		if mtls {
			tc.Certificates = nil
			if nc, err := nats.Connect(f.NATSURLs[0], nats.UserInfo(f.NATSUser, f.NATSPassword), nats.MaxReconnects(0), nats.Secure(tc)); err == nil {
				nc.Close()
				t.Error("mtls: a connection without a certificate admitted")
			}
		}
		startLink(t, n)
		if !online(t, h, "north", 10*time.Second) {
			t.Fatalf("mtls %v: the node with its own key did not come online", mtls)
		}
	}
}

// TestNATSPlainOffLoopback: the hub refuses NATS without TLS on an
// address other hosts reach, naming --insecure, and accepts it on
// loopback or when told.
func TestNATSPlainOffLoopback(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  hub.Config
		ok   bool
	}{
		{"client, every interface", hub.Config{NATSListen: "0.0.0.0:0", NATSNoTLS: true}, false},
		{"client, an address", hub.Config{NATSListen: "192.0.2.1:4222", NATSNoTLS: true}, false},
		{"websocket, every interface", hub.Config{NATSListen: "127.0.0.1:0", NATSWebSocket: ":0", NATSNoTLS: true}, false},
		{"loopback", hub.Config{NATSListen: "127.0.0.1:0", NATSWebSocket: "127.0.0.1:0", NATSNoTLS: true}, true},
		{"insecure", hub.Config{NATSListen: "0.0.0.0:0", NATSNoTLS: true, Insecure: true}, true},
		{"tls, every interface", hub.Config{NATSListen: "0.0.0.0:0", NATSWebSocket: "0.0.0.0:0"}, true},
		{"plain allowed, every interface", hub.Config{NATSListen: "0.0.0.0:0", NATSAllowPlain: true}, false},
		{"plain allowed, insecure", hub.Config{NATSListen: "0.0.0.0:0", NATSAllowPlain: true, Insecure: true}, true},
	} {
		c.cfg.Data, c.cfg.Log = t.TempDir(), quiet
		h, err := hub.Open(context.Background(), c.cfg)
		if h != nil {
			h.Close()
		}
		switch {
		case c.ok && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case !c.ok && (err == nil || !strings.Contains(err.Error(), "--insecure")):
			t.Errorf("%s: got %v, want a refusal naming --insecure", c.name, err)
		}
	}
}

// TestNATSWebSocketTLS: the WebSocket listener has TLS too (wss://),
// and a node set to use it connects through it.
func TestNATSWebSocketTLS(t *testing.T) {
	for _, mtls := range []bool{false, true} {
		t.Run(map[bool]string{false: "tls", true: "mtls"}[mtls], func(t *testing.T) { testNATSWebSocketTLS(t, mtls) })
	}
}

func testNATSWebSocketTLS(t *testing.T, mtls bool) {
	h, srv := tlsHub(t, hub.Config{NATSWebSocket: "127.0.0.1:0", NATSMTLS: mtls})
	n := enrolNode(t, h, srv, "north", node.Config{HubWebSocket: true})
	f, _, _ := n.LoadFederation()
	var wss string
	for _, u := range f.NATSURLs {
		if strings.HasPrefix(u, "wss://") {
			wss = u
		}
	}
	if wss == "" {
		t.Fatalf("no wss:// address handed out: %v", f.NATSURLs)
	}
	u, _ := url.Parse(wss)
	if nc, err := nats.Connect("ws://"+u.Host, nats.UserInfo(f.NATSUser, f.NATSPassword), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Error("plain ws:// admitted")
	}
	startLink(t, n)
	if !online(t, h, "north", 10*time.Second) {
		t.Fatal("the node did not come online over wss://")
	}
}

// TestPreTLSEnrolment: a node enrolled before the hub had TLS (a
// nats:// address, no pinned certificate) fetches the hub's signed NATS
// settings at start and connects over TLS.
func TestPreTLSEnrolment(t *testing.T) {
	h, srv := tlsHub(t, hub.Config{})
	n := enrolNode(t, h, srv, "north", node.Config{})
	if err := n.UpdateFederation(func(f *node.Federation) {
		f.NATSURLs, f.NATSCA = []string{"nats://" + strings.TrimPrefix(f.NATSURLs[0], "tls://")}, ""
	}); err != nil {
		t.Fatal(err)
	}
	startLink(t, n)
	if !online(t, h, "north", 10*time.Second) {
		t.Fatal("the node enrolled before TLS did not come online")
	}
	f, _, _ := n.LoadFederation()
	if f.NATSCA != h.NATSCA() || !strings.HasPrefix(f.NATSURLs[0], "tls://") {
		t.Errorf("federation.json after the refresh: %v %q", f.NATSURLs, f.NATSCA)
	}
}

// TestNATSOperatorCertificate: with the operator's certificate and key,
// nodes pin the top of the chain in the file and connect.
func TestNATSOperatorCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, issuer := operatorCertificate(t, dir)
	h, srv := tlsHub(t, hub.Config{NATSTLSCert: certFile, NATSTLSKey: keyFile})
	if h.NATSCA() != issuer {
		t.Fatalf("pinned %q, want the issuer", h.NATSCA())
	}
	n := enrolNode(t, h, srv, "north", node.Config{})
	startLink(t, n)
	if !online(t, h, "north", 10*time.Second) {
		t.Fatal("the node did not come online with the operator's certificate")
	}
}

// operatorCertificate writes a leaf for 127.0.0.1 followed by its
// issuer, and the leaf's key, as an operator would get them; it returns
// the files and the issuer's PEM.
func operatorCertificate(t *testing.T, dir string) (certFile, keyFile, issuerPEM string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Operator CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "hub.example.org"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames: []string{"hub.example.org"}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, leafKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(leafKey)
	certFile, keyFile = filepath.Join(dir, "hub.crt"), filepath.Join(dir, "hub.key")
	os.WriteFile(certFile, []byte(fed.CertPEM(leafDER, caDER)), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile, fed.CertPEM(caDER)
}

// TestRefreshNeedsHubSignature: NATS settings signed by another hub's
// key are refused and change nothing.
func TestRefreshNeedsHubSignature(t *testing.T) {
	h, srv := tlsHub(t, hub.Config{})
	_, otherSrv := tlsHub(t, hub.Config{})
	n := enrolNode(t, h, srv, "north", node.Config{})
	if err := n.UpdateFederation(func(f *node.Federation) { f.HubURL = otherSrv.URL }); err != nil {
		t.Fatal(err)
	}
	before, _, _ := n.LoadFederation()
	if _, err := n.RefreshFederation(context.Background()); !errors.Is(err, fed.ErrSignature) {
		t.Errorf("settings signed by another hub: %v, want fed.ErrSignature", err)
	}
	after, _, _ := n.LoadFederation()
	if after.NATSCA != before.NATSCA || after.NATSURLs[0] != before.NATSURLs[0] {
		t.Error("refused settings were stored")
	}
	if err := n.UpdateFederation(func(f *node.Federation) { f.HubURL = srv.URL }); err != nil {
		t.Fatal(err)
	}
	if f, err := n.RefreshFederation(context.Background()); err != nil || f.NATSCA != h.NATSCA() {
		t.Errorf("settings from its own hub: %v", err)
	}
}

// TestNATSAllowPlain: with nats_allow_plain a node binary older than
// TLS (plain nats://, no certificate) is admitted beside TLS clients,
// which still get TLS; without it the old node gets nowhere.
func TestNATSAllowPlain(t *testing.T) {
	for _, allow := range []bool{false, true} {
		h, srv := tlsHub(t, hub.Config{NATSAllowPlain: allow})
		n := enrolNode(t, h, srv, "north", node.Config{})
		f, _, _ := n.LoadFederation()
		plain := "nats://" + strings.TrimPrefix(f.NATSURLs[0], "tls://")
		nc, err := nats.Connect(plain, nats.UserInfo(f.NATSUser, f.NATSPassword), nats.MaxReconnects(0))
		if nc != nil {
			nc.Close()
		}
		if (err == nil) != allow {
			t.Errorf("allow plain %v: a plain connection: %v", allow, err)
		}
		key, err := fed.LoadOrCreateKey(filepath.Join(n.Config().Data, "node.key"))
		if err != nil {
			t.Fatal(err)
		}
		tc, err := fed.ClientTLS(f.NATSCA, key, "north")
		if err != nil {
			t.Fatal(err)
		}
		nc, err = nats.Connect(f.NATSURLs[0], nats.UserInfo(f.NATSUser, f.NATSPassword), nats.MaxReconnects(0), nats.Secure(tc))
		if err != nil {
			t.Fatalf("allow plain %v: TLS connection: %v", allow, err)
		}
		if _, err := nc.TLSConnectionState(); err != nil {
			t.Errorf("allow plain %v: the TLS client is not on TLS: %v", allow, err)
		}
		nc.Close()
	}
}
