package harness

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"
)

// PKI is a throwaway certificate authority created at test time, so no key material
// lives in the repository and nothing expires between runs.
type PKI struct {
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	pem    []byte
	pool   *x509.CertPool
	mu     sync.Mutex
	serial int64
}

// NewPKI creates a CA. A second PKI is useful as an untrusted issuer.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "meshwasm e2e CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("pki: create CA: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("pki: parse CA: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &PKI{cert: cert, key: key, pem: pemBlock("CERTIFICATE", der), pool: pool, serial: 1}
}

// CAPEM returns the CA certificate in PEM form.
func (p *PKI) CAPEM() []byte { return p.pem }

// CertPool returns a pool trusting only this CA.
func (p *PKI) CertPool() *x509.CertPool { return p.pool }

// ServerCert issues a serving certificate for localhost and 127.0.0.1, returned as PEM
// certificate and PEM key (the form Envoy reads from files).
func (p *PKI) ServerCert(t testing.TB) (certPEM, keyPEM []byte) {
	t.Helper()
	key := newKey(t)
	der := p.issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, key)
	return pemBlock("CERTIFICATE", der), encodeKey(t, key)
}

// ClientCert issues a client certificate whose only URI SAN is spiffeID, e.g.
// "spiffe://cluster.local/ns/orders/sa/order-service": Envoy exposes it to filters as
// connection.uri_san_peer_certificate.
func (p *PKI) ClientCert(t testing.TB, spiffeID string) tls.Certificate {
	t.Helper()
	id, err := url.Parse(spiffeID)
	if err != nil || id.Scheme == "" {
		t.Fatalf("pki: client identity %q: not a URI", spiffeID)
	}
	key := newKey(t)
	der := p.issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: id.Path},
		URIs:        []*url.URL{id},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, key)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func (p *PKI) issue(t testing.TB, tmpl *x509.Certificate, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	p.mu.Lock()
	p.serial++
	tmpl.SerialNumber = big.NewInt(p.serial)
	p.mu.Unlock()
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		t.Fatalf("pki: issue %q: %v", tmpl.Subject.CommonName, err)
	}
	return der
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	// P-256: fast to generate, and every TLS stack (BoringSSL in Envoy) accepts it.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("pki: generate key: %v", err)
	}
	return key
}

func encodeKey(t testing.TB, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("pki: marshal key: %v", err)
	}
	return pemBlock("PRIVATE KEY", der)
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
