package attest

import (
	"strings"
	"testing"
)

// TestBundledCertificates checks every shipped certificate is intact
// (its self-signature verifies, so no byte was changed) and named by Region.
func TestBundledCertificates(t *testing.T) {
	b, err := AWSBundle()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1"} {
		cert := b[r]
		if cert == nil {
			t.Fatalf("no certificate for %s", r)
		}
		if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
			t.Errorf("%s: self-signature: %v", r, err)
		}
		if cert.Subject.Organization[0] != "Amazon Web Services LLC" {
			t.Errorf("%s: subject %v", r, cert.Subject)
		}
	}
}

func TestParseBundleRefuses(t *testing.T) {
	one := string(awsBundle[strings.Index(string(awsBundle), "-----BEGIN"):])
	one = one[:strings.Index(one, "-----END CERTIFICATE-----")+len("-----END CERTIFICATE-----")]
	cases := map[string]struct {
		in, want string
	}{
		"empty":             {"", "no certificate"},
		"no region":         {strings.Replace(one, "Region: us-east-1\n", "", 1), "no Region header"},
		"region twice":      {one + "\n" + one, "given twice"},
		"not a certificate": {strings.ReplaceAll(one, "CERTIFICATE", "PRIVATE KEY"), "want CERTIFICATE"},
		"broken base64":     {strings.Replace(one, "MIIE", "M!IE", 1), "no readable PEM block"},
		"truncated DER":     {strings.Replace(one, "NWIsDEcp3GUB4proOR+C7PNkY+VGODitBOw09qBGosCBstwyEqY=\n", "", 1), "us-east-1"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ParseBundle([]byte(c.in))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	b, err := AWSBundle()
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte("MIIB"))
	f.Add([]byte("-----BEGIN PKCS7-----\nMAA=\n-----END PKCS7-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		// Nothing the fuzzer makes is signed by AWS: it must be refused,
		// never accepted and never panic.
		if doc, err := Verify(b, in); err == nil {
			t.Fatalf("accepted %q as %+v", in, doc)
		}
	})
}

func FuzzParseBundle(f *testing.F) {
	f.Add(awsBundle)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nRegion: x\n\nMAA=\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		b, err := ParseBundle(in)
		if err == nil && len(b) == 0 {
			t.Fatal("empty bundle without an error")
		}
	})
}
