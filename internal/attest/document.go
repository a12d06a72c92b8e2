package attest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/smallstep/pkcs7"

	"github.com/aerostat-io/aerostat/internal/attestclient"
)

// Document is the part of an EC2 instance identity document the
// controller relies on. Its JSON names are AWS's.
type Document struct {
	InstanceID       string    `json:"instanceId"`
	AccountID        string    `json:"accountId"`
	Region           string    `json:"region"`
	AvailabilityZone string    `json:"availabilityZone"`
	PrivateIP        string    `json:"privateIp"`
	PendingTime      time.Time `json:"pendingTime"`
}

// ErrRefused marks every verification failure: the caller answers 403.
var ErrRefused = errors.New("identity refused")

func refuse(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRefused, fmt.Sprintf(format, args...))
}

// maxSigned bounds the signed document a node may send (AWS's is ~1.5 KiB).
const maxSigned = attestclient.MaxSigned

// Verify checks signed (IMDS's rsa2048 answer: base64 of a PKCS7
// SignedData holding the document, PEM armour optional) against the
// certificate bundle holds for the Region the document names, and returns
// the document. The signer certificates inside the PKCS7 are ignored: only
// the bundle's certificate for that Region can verify it, so a document
// signed by any other key, or by another Region's key, is refused. Every
// refusal wraps ErrRefused and says why.
func Verify(bundle Bundle, signed []byte) (Document, error) {
	if len(signed) > maxSigned {
		return Document{}, refuse("signed document larger than %d bytes", maxSigned)
	}
	der, err := decodeSigned(signed)
	if err != nil {
		return Document{}, err
	}
	p7, err := pkcs7.Parse(der)
	if err != nil {
		return Document{}, refuse("signed document: not PKCS7: %v", err)
	}
	if len(p7.Signers) != 1 {
		return Document{}, refuse("signed document: %d signers, want 1", len(p7.Signers))
	}
	doc, err := parseDocument(p7.Content)
	if err != nil {
		return Document{}, err
	}
	cert, ok := bundle[doc.Region]
	if !ok {
		return Document{}, refuse("region %q: no certificate in the bundle (add it with --attest-ca-bundle)", doc.Region)
	}
	p7.Certificates = append(p7.Certificates[:0], cert)
	if err := p7.Verify(); err != nil {
		return Document{}, refuse("signature does not verify with the %s certificate: %v", doc.Region, err)
	}
	return doc, nil
}

func decodeSigned(signed []byte) ([]byte, error) {
	if block, _ := pem.Decode(signed); block != nil {
		if block.Type != "PKCS7" {
			return nil, refuse("signed document: PEM type %q, want PKCS7", block.Type)
		}
		return block.Bytes, nil
	}
	clean := strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, string(signed))
	der, err := base64.StdEncoding.DecodeString(clean)
	if err != nil {
		return nil, refuse("signed document: not base64: %v", err)
	}
	if len(der) == 0 {
		return nil, refuse("signed document: empty")
	}
	return der, nil
}

// parseDocument reads the signed JSON and checks every field this package
// relies on is present and well formed.
func parseDocument(content []byte) (Document, error) {
	var doc Document
	dec := json.NewDecoder(bytes.NewReader(content))
	if err := dec.Decode(&doc); err != nil {
		return Document{}, refuse("identity document: %v", err)
	}
	switch {
	case !strings.HasPrefix(doc.InstanceID, "i-") || len(doc.InstanceID) > 64:
		return Document{}, refuse("identity document: instanceId %q is not an instance id", doc.InstanceID)
	case doc.Region == "" || len(doc.Region) > 64:
		return Document{}, refuse("identity document: region %q", doc.Region)
	case doc.PendingTime.IsZero():
		return Document{}, refuse("identity document: no pendingTime")
	}
	if a, err := netip.ParseAddr(doc.PrivateIP); err != nil || a.Zone() != "" {
		return Document{}, refuse("identity document: privateIp %q is not an IP address", doc.PrivateIP)
	}
	return doc, nil
}
