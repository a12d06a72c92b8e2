package feed

import (
	"crypto/ecdsa"
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
	"net/http"
	"os"
	"strings"
	"time"
)

// SelfSigned makes a certificate for hosts (DNS names or IPs) valid for a
// year from now, and returns it with its PEM, which clients pin as their
// CA (agent --feed-ca-file). For the demo and standalone controllers
// started without a certificate; in Kubernetes the chart provides one.
func SelfSigned(hosts []string, now time.Time) (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("generating feed key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("generating serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "aerostat-feed"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // its own CA, so clients can pin it as one
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("signing feed certificate: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	return cert, certPEM, err
}

// ServerTLSOptions configure ServerTLS.
type ServerTLSOptions struct {
	CertFile, KeyFile string
	// Hosts go into a generated certificate (no files given).
	Hosts []string
	// WriteCert, when set, receives a generated certificate's PEM (0644)
	// for the agents to pin.
	WriteCert string
	Now       func() time.Time
}

// ServerTLS loads the feed's certificate, or makes a self-signed one when
// neither file is given. Errors name the flag at fault.
func ServerTLS(o ServerTLSOptions) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case o.CertFile != "" && o.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("--feed-tls-cert-file %q, --feed-tls-key-file %q: %w", o.CertFile, o.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
		return cfg, nil
	case o.CertFile != "" || o.KeyFile != "":
		return nil, errors.New("--feed-tls-cert-file and --feed-tls-key-file go together")
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	cert, certPEM, err := SelfSigned(o.Hosts, now())
	if err != nil {
		return nil, err
	}
	if o.WriteCert != "" {
		if err := os.WriteFile(o.WriteCert, certPEM, 0o644); err != nil {
			return nil, fmt.Errorf("writing the feed's generated certificate: %w", err)
		}
	}
	cfg.Certificates = []tls.Certificate{cert}
	return cfg, nil
}

// ClientTLS trusts the CA certificates in caFile (PEM), or the system
// roots when caFile is empty.
func ClientTLS(caFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return cfg, nil
	}
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--feed-ca-file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("--feed-ca-file %q: no PEM certificate in it", caFile)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// FileToken reads a bearer token from path at every call, so a projected
// ServiceAccount token that the kubelet rotates is picked up.
func FileToken(path string) func() (string, error) {
	return func() (string, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("reading feed token: %w", err)
		}
		t := strings.TrimSpace(string(b))
		if t == "" {
			return "", fmt.Errorf("feed token file %s is empty", path)
		}
		return t, nil
	}
}

// TokenTransport sends a bearer token from Token with every request.
type TokenTransport struct {
	Base  http.RoundTripper // http.DefaultTransport when nil
	Token func() (string, error)
}

// RoundTrip implements http.RoundTripper.
func (t *TokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	tok, err := t.Token()
	if err != nil {
		return nil, err
	}
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+tok)
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(req)
}

// NewHTTPClient is the agents' (and the CLI's) feed client: TLS trusting
// caFile (system roots when empty) and, when tokenFile is set, its token
// with every request.
func NewHTTPClient(caFile, tokenFile string, timeout time.Duration) (*http.Client, error) {
	tlsCfg, err := ClientTLS(caFile)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	var rt http.RoundTripper = tr
	if tokenFile != "" {
		rt = &TokenTransport{Base: tr, Token: FileToken(tokenFile)}
	}
	return &http.Client{Transport: rt, Timeout: timeout}, nil
}
