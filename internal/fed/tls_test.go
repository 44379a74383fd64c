package fed

import (
	"crypto/ed25519"
	"testing"
)

// TestKeyCertificate: the certificate made from a key carries that key
// (the hub's mutual TLS compares it with the enrolled one), and a client
// configuration needs a certificate to pin.
func TestKeyCertificate(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	c, err := KeyCertificate(key, "north")
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := c.Leaf.PublicKey.(ed25519.PublicKey); !ok || !got.Equal(key.Public()) {
		t.Errorf("certificate key %v, want the node's", c.Leaf.PublicKey)
	}
	if err := c.Leaf.CheckSignature(c.Leaf.SignatureAlgorithm, c.Leaf.RawTBSCertificate, c.Leaf.Signature); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	if _, err := ClientTLS("", key, "north"); err == nil {
		t.Error("a client TLS configuration without a pinned certificate")
	}
	tc, err := ClientTLS(CertPEM(c.Leaf.Raw), key, "north")
	if err != nil || tc.RootCAs == nil || len(tc.Certificates) != 1 || tc.InsecureSkipVerify {
		t.Errorf("client TLS: %v %+v", err, tc)
	}
}
