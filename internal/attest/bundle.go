package attest

import (
	"bytes"
	"crypto/x509"
	_ "embed"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
)

// awsBundle is AWS's published RSA-2048 identity document certificates
// (see the file's header for its source and the Regions it covers).
//
//go:embed aws-rsa2048.pem
var awsBundle []byte

// Bundle maps a Region to the certificate whose key signs that Region's
// identity documents.
type Bundle map[string]*x509.Certificate

// AWSBundle returns the bundled AWS certificates.
func AWSBundle() (Bundle, error) {
	b, err := ParseBundle(awsBundle)
	if err != nil {
		return nil, fmt.Errorf("bundled AWS certificates: %w", err)
	}
	return b, nil
}

// LoadBundle reads a bundle file (see ParseBundle).
func LoadBundle(path string) (Bundle, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading certificate bundle: %w", err)
	}
	b, err := ParseBundle(data)
	if err != nil {
		return nil, fmt.Errorf("certificate bundle %s: %w", path, err)
	}
	return b, nil
}

// ParseBundle reads PEM CERTIFICATE blocks, each with a "Region" header
// naming the one Region it signs for; text between blocks is ignored.
// A block without a Region, a Region given twice, anything but a
// certificate, or no certificate at all is an error.
func ParseBundle(data []byte) (Bundle, error) {
	out := Bundle{}
	rest := data
	for n := 1; ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("block %d: type %q, want CERTIFICATE", n, block.Type)
		}
		region := strings.TrimSpace(block.Headers["Region"])
		if region == "" {
			return nil, fmt.Errorf("block %d: no Region header (add \"Region: <region>\" after the BEGIN line)", n)
		}
		if _, dup := out[region]; dup {
			return nil, fmt.Errorf("block %d: Region %q given twice", n, region)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("block %d (Region %s): %w", n, region, err)
		}
		out[region] = cert
	}
	if len(out) == 0 {
		if bytes.Contains(data, []byte("-----BEGIN")) {
			return nil, fmt.Errorf("no readable PEM block")
		}
		return nil, fmt.Errorf("no certificate")
	}
	return out, nil
}
