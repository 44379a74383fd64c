package hub

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/mosaic-imaging/mosaic/internal/fed"
)

// Files of the hub's own NATS certificate authority in the data
// directory. The CA signs a fresh server certificate at every start,
// for the host names and addresses the hub has then; nodes pin the CA.
const (
	natsCAFile    = "nats-ca.pem"
	natsCAKeyFile = "nats-ca.key"
)

// natsTLS is the TLS of the embedded NATS server.
type natsTLS struct {
	server *tls.Config    // the client and WebSocket listeners'
	pinned string         // PEM certificates nodes trust (handed out at enrolment)
	pool   *x509.CertPool // the same, parsed
}

// loadNATSTLS loads the operator's certificate and key, or the hub's own
// CA (made on first start) and a server certificate it signs.
func loadNATSTLS(cfg Config) (*natsTLS, error) {
	var cert tls.Certificate
	var top *x509.Certificate
	if cfg.NATSTLSCert != "" {
		var err error
		cert, err = tls.LoadX509KeyPair(cfg.NATSTLSCert, cfg.NATSTLSKey)
		if err != nil {
			return nil, fmt.Errorf("hub: nats_tls_cert and nats_tls_key: %w", err)
		}
		// Nodes pin the top of the chain in the file: the leaf alone, or
		// the issuer the operator ships with it (so a renewed leaf from
		// the same issuer needs nothing from the nodes).
		if top, err = x509.ParseCertificate(cert.Certificate[len(cert.Certificate)-1]); err != nil {
			return nil, fmt.Errorf("hub: nats_tls_cert: %w", err)
		}
	} else {
		ca, caKey, err := loadOrCreateCA(cfg.Data)
		if err != nil {
			return nil, err
		}
		if cert, err = serverCertificate(ca, caKey, natsHosts(cfg)); err != nil {
			return nil, err
		}
		top = ca
	}
	pool := x509.NewCertPool()
	pool.AddCert(top)
	sc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if cfg.NATSMTLS {
		// Any certificate: the hub checks its key against the one the
		// node enrolled with (natsAuth), not a chain.
		sc.ClientAuth = tls.RequireAnyClientCert
	}
	return &natsTLS{server: sc, pinned: fed.CertPEM(top.Raw), pool: pool}, nil
}

// loadOrCreateCA reads the hub's NATS CA from dir, or makes it (an
// ECDSA P-256 key and a self-signed certificate valid 20 years, both
// mode 0600).
func loadOrCreateCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPath, keyPath := filepath.Join(dir, natsCAFile), filepath.Join(dir, natsCAKeyFile)
	cb, err1 := os.ReadFile(certPath)
	kb, err2 := os.ReadFile(keyPath)
	if err1 == nil && err2 == nil {
		pair, err := tls.X509KeyPair(cb, kb)
		if err != nil {
			return nil, nil, fmt.Errorf("hub: %s and %s: %w", natsCAFile, natsCAKeyFile, err)
		}
		ca, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			return nil, nil, err
		}
		key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
		if !ok || !ca.IsCA {
			return nil, nil, fmt.Errorf("hub: %s is not the hub's CA", natsCAFile)
		}
		return ca, key, nil
	}
	if !errors.Is(err1, os.ErrNotExist) && err1 != nil {
		return nil, nil, err1
	}
	if !errors.Is(err2, os.ErrNotExist) && err2 != nil {
		return nil, nil, err2
	}
	if err1 == nil || err2 == nil {
		return nil, nil, fmt.Errorf("hub: %s and %s go together; one is missing", natsCAFile, natsCAKeyFile)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "Mosaic hub NATS CA " + fed.NewID()[:8]},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(20, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	ca, _ := x509.ParseCertificate(der)
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	if err := writePrivate(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})); err != nil {
		return nil, nil, err
	}
	if err := writePrivate(certPath, []byte(fed.CertPEM(der))); err != nil {
		return nil, nil, err
	}
	return ca, key, nil
}

// writePrivate writes a file readable by its owner only, atomically.
func writePrivate(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

// serverCertificate makes the NATS server's certificate for hosts,
// signed by the CA; its key lives in memory only.
func serverCertificate(ca *x509.Certificate, caKey *ecdsa.PrivateKey, hosts []string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "mosaic-hub"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(5, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if asciiName(h) {
			// A certificate cannot carry other names (an internationalised
			// one must be given in its xn-- form).
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der, ca.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

func asciiName(s string) bool {
	for _, c := range s {
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return s != ""
}

// natsHosts are the names and addresses the server certificate covers:
// loopback, the machine's name, the listen addresses, the public URL's
// host, and every interface address when listening on all of them.
func natsHosts(cfg Config) []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if name, err := os.Hostname(); err == nil && name != "" {
		hosts = append(hosts, name)
	}
	all := false
	for _, addr := range []string{cfg.NATSListen, cfg.NATSWebSocket} {
		if h, _, err := net.SplitHostPort(addr); err == nil {
			if unspecified(h) {
				all = all || addr != ""
			} else {
				hosts = append(hosts, h)
			}
		}
	}
	if u, err := url.Parse(cfg.PublicURL); err == nil && u.Hostname() != "" {
		hosts = append(hosts, u.Hostname())
	}
	if all {
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if ipn, ok := a.(*net.IPNet); ok {
					hosts = append(hosts, ipn.IP.String())
				}
			}
		}
	}
	slices.Sort(hosts)
	return slices.Compact(hosts)
}

// unspecified reports a listen host that means every interface.
func unspecified(host string) bool {
	ip := net.ParseIP(host)
	return host == "" || (ip != nil && ip.IsUnspecified())
}

// loopback reports whether a listen address stays on this machine.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// advertise replaces an unspecified host in a URL of the embedded
// server by the public URL's host, which nodes can reach.
func (h *Hub) advertise(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || !unspecified(u.Hostname()) {
		return raw
	}
	pu, err := url.Parse(h.cfg.PublicURL)
	if err != nil || pu.Hostname() == "" {
		return raw
	}
	u.Host = net.JoinHostPort(pu.Hostname(), u.Port())
	return u.String()
}

// selfTLS is the TLS of the hub's own connection to its embedded
// server: it trusts the server's pinned certificates whatever name the
// connection uses, and presents a certificate made from the hub's key.
func (h *Hub) selfTLS() (*tls.Config, error) {
	cert, err := fed.KeyCertificate(h.key, h.hubUser)
	if err != nil {
		return nil, err
	}
	pool := h.tls.pool
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		// The name check is replaced by VerifyConnection's check of the
		// chain against the pinned certificates: the connection is the
		// hub's own, to the address it listens on.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("hub: the NATS server sent no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter})
			return err
		},
	}, nil
}

// certMatches reports whether the client presented a certificate whose
// public key is the one node enrolled with.
func (h *Hub) certMatches(c server.ClientAuthentication, node string) bool {
	cs := c.GetTLSConnectionState()
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return false
	}
	got, ok := cs.PeerCertificates[0].PublicKey.(ed25519.PublicKey)
	if !ok {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	want := h.nodeKey(ctx, node)
	return want != nil && got.Equal(want)
}
