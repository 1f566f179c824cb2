package harness

import (
	"crypto/tls"
	"crypto/x509"
)

func parseLeaf(c tls.Certificate) (*x509.Certificate, error) {
	return x509.ParseCertificate(c.Certificate[0])
}

func verifyClientOpts(p *PKI) x509.VerifyOptions {
	return x509.VerifyOptions{Roots: p.CertPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
}
