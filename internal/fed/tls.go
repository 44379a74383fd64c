package fed

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"time"
)

// KeyCertificate makes a self-signed TLS certificate from an Ed25519
// key, named name. Nodes present it to the hub's NATS server, which
// admits it when its public key is the one registered at enrolment (the
// certificate's other fields mean nothing to the hub).
func KeyCertificate(key ed25519.PrivateKey, name string) (tls.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// ClientTLS is the TLS configuration of a connection to the hub's NATS
// server: only certificates issued under the PEM certificates pinned
// (the hub handed them out at enrolment) are trusted, never the system's
// roots, and the connection presents the certificate made from key (for
// hubs that ask for one).
func ClientTLS(pinnedPEM string, key ed25519.PrivateKey, name string) (*tls.Config, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(pinnedPEM)) {
		return nil, errors.New("fed: no certificate in the pinned NATS certificate")
	}
	cert, err := KeyCertificate(key, name)
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// CertPEM writes DER certificates as PEM.
func CertPEM(ders ...[]byte) string {
	var out []byte
	for _, d := range ders {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})...)
	}
	return string(out)
}
