package fake

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/smallstep/pkcs7"
)

// IdentitySigner signs instance identity documents as AWS does: one
// self-signed RSA-2048 certificate a Region, PKCS7 SignedData with the
// document inside, SHA-256. It is the test stand-in for AWS's keys.
type IdentitySigner struct {
	mu    sync.Mutex
	certs map[string]*x509.Certificate
	keys  map[string]*rsa.PrivateKey
}

// NewIdentitySigner makes a key and certificate for each Region.
func NewIdentitySigner(regions ...string) (*IdentitySigner, error) {
	s := &IdentitySigner{certs: map[string]*x509.Certificate{}, keys: map[string]*rsa.PrivateKey{}}
	for i, region := range regions {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("generating key for %s: %w", region, err)
		}
		// AWS's certificates share one subject; so do these, so only the
		// serial tells them apart, as with the real ones.
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(int64(1000 + i)),
			Subject:      pkix.Name{Country: []string{"US"}, Province: []string{"Washington State"}, Locality: []string{"Seattle"}, Organization: []string{"Amazon Web Services LLC"}},
			NotBefore:    time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC),
			NotAfter:     time.Date(2195, 1, 1, 0, 0, 0, 0, time.UTC),
			KeyUsage:     x509.KeyUsageDigitalSignature,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			return nil, fmt.Errorf("certificate for %s: %w", region, err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, err
		}
		s.certs[region], s.keys[region] = cert, key
	}
	return s, nil
}

// Bundle returns the certificates as an attest bundle (PEM, Region headers).
func (s *IdentitySigner) Bundle() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for region, cert := range s.certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Headers: map[string]string{"Region": region}, Bytes: cert.Raw})
	}
	return []byte(b.String())
}

// Sign returns doc signed with region's key, base64 as IMDS serves it.
func (s *IdentitySigner) Sign(region string, doc []byte) (string, error) {
	s.mu.Lock()
	cert, key := s.certs[region], s.keys[region]
	s.mu.Unlock()
	if cert == nil {
		return "", fmt.Errorf("no key for region %s", region)
	}
	sd, err := pkcs7.NewSignedData(doc)
	if err != nil {
		return "", err
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if err := sd.AddSigner(cert, key, pkcs7.SignerInfoConfig{}); err != nil {
		return "", err
	}
	der, err := sd.Finish()
	if err != nil {
		return "", err
	}
	// IMDS breaks the base64 into 64-character lines.
	enc := base64.StdEncoding.EncodeToString(der)
	var lines []string
	for len(enc) > 64 {
		lines, enc = append(lines, enc[:64]), enc[64:]
	}
	return strings.Join(append(lines, enc), "\n"), nil
}
