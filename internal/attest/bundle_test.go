package attest

import (
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"time"
)

// bundledSHA256 pins each bundled Region's certificate (SHA-256 of the
// DER), as cross-checked against independent copies of AWS's page when
// the bundle was assembled (see aws-rsa2048.pem's header): a block moved
// to another Region, changed, dropped or added fails the test.
var bundledSHA256 = map[string]string{
	"af-south-1":     "215bab209298aaf8cf4c5deea56bd912abe845d6e9e33aa995e573f7579db5d7",
	"ap-east-1":      "75afac160d2f645889223451647251171df78925170ca324374ef7ea4542d9cc",
	"ap-east-2":      "fcfbff9e5ae6acbd30b784a463ccef3a114a4e6d1c2d89a81b9ccb1e8857bbdc",
	"ap-northeast-1": "b325c09f762291bfb8a149a3d8045eecda8152e79a7f4c83974a3703a2a7bb6d",
	"ap-northeast-2": "ec5c9ece34b9cac24109f4baa049f79ad71a1350b9bb0eee099bae13e951a8ae",
	"ap-northeast-3": "91069057ad654d162b614d67a57690c55cc7cdc470f8907fb34700998654d27a",
	"ap-south-1":     "db42efd744acc054f9009d3298e72e646dff7eb0c288392dd5e3028fe8e0c344",
	"ap-south-2":     "aa6f3e8afcd5e477501fbaf9d19f0945c7d94548f5a2de6375d8bfbab744cae0",
	"ap-southeast-1": "df7aad409dad94ffb0b45a677051291855c328945379ba05f4aa4983baa2b5b1",
	"ap-southeast-2": "3c2fa3fa70c80bc64e5e934b30e2d0af1733cfd32584f68f86804c43a934833d",
	"ap-southeast-3": "0bca692ad7956ac1317fc73f19ba247a7625d5852b744ada2c8c6f03b8cb29a4",
	"ap-southeast-4": "5347b6c5dc90111073e85a2eebd4392d3c277b0e243a05e0dddd740e69b4aefc",
	"ap-southeast-5": "4f0b294cf80ca024c06f9ff2ec0721abeed07b28fec90b5ffdc996c23fdc0f9a",
	"ap-southeast-6": "4302161545ec95270a90897702f8da0a7d949028d4da6bcf3f6dcfffeb57af87",
	"ap-southeast-7": "dbb89bd7e296d584a016304fe4287a74c97fbf67334a90df3be6e29dcc31afcd",
	"ca-central-1":   "69be70bcd56ff0650110630fbd71e970d23e9ae59394fd72767c8b319db09b4b",
	"ca-west-1":      "6a49730931cefb717811f49ecf5a37115923c9871722490e9d7d6871c6bcba7c",
	"cn-north-1":     "d3fa6cd2046e8ddd7a07305a684f82657442c68d31aedc13dc874ddae4400cf1",
	"cn-northwest-1": "58ae74d878479669fb3fb2336f4ec7f934a6e54865a83f696ad99d2a31dcda62",
	"eu-central-1":   "40e59f0c3924d32f53b9f66145fc18c4dfa1192dec7c74ad84d719826e9c7ba1",
	"eu-central-2":   "3598ff0a81680124bc848e853fdff1384ce2b05744f597edaa026b85477a605d",
	"eu-north-1":     "3a81e8168287011b59f1246bdc632d017711779940d06549a56388b691d1c31f",
	"eu-south-1":     "9fae1c2aa470cad03c814ea3cb06ddc2d0322d108b498431ab68b8297463bbc7",
	"eu-south-2":     "4dcc441f0cd06251b319a75d5fc405abd601ef86c1ad81bcc8e34f83035685a9",
	"eu-west-1":      "7963eae83b58ab14bbd0715947015dd6866d7623df85eca742cabb8898281f30",
	"eu-west-2":      "05e9c1ed5db46627c702fca74bd0c3bbee6ff57057f6df250d626d08bd0a3652",
	"eu-west-3":      "ca43ba8d6bf1d7f35b6be653f218609f131f1aaa16f66951e5d6a73348591353",
	"eusc-de-east-1": "3c80306f964b9fa633e6df99e5ecb6c347db118cf6d39076a6da786436e35ce2",
	"il-central-1":   "22792795853d820ed2a9b8657f086fc498dd538fbf03f6cc7a4707379af06402",
	"me-central-1":   "417830b0cc193b11c58b2bd71773656486fa436c1e9df7785098785f406581d1",
	"me-south-1":     "9ae8dda9e5209804f0dc3f06a17a6147b075eb364ab2067525ec09021128c9b0",
	"mx-central-1":   "cfd0f2560cb99f9e0257b095bdea262cdd5313d1add1c7e1e4531c3f4ba609ac",
	"sa-east-1":      "940ffcb9b2e5d1ef928c8832d804ff50a54eb231b19c683f9010225231ae6481",
	"us-east-1":      "70923c22dd074172d0e5d27ea1ca865412525fccd8bc2cd0ff40660e275f0b30",
	"us-east-2":      "dee29d569f783135c8eb61ac9b0d4a744ca7ba83808eb6eff7945f7fbfec4e41",
	"us-gov-east-1":  "a5e8286c6cfd2ab64d7ba5d2afe1b9fdb4c111941edc389c68c55c1ff69299c4",
	"us-gov-west-1":  "bf80d05c8bc1b7167f12d2f292bd084391f323c1d7887d1eafe9dee34b65519d",
	"us-west-1":      "abdc625e6600af52d4d3b88415bc092843e2d268f7136e62ebc2d9de94ae8232",
	"us-west-2":      "4e3569f2925a867a0c2f1b64efe101d4b4853d11c4f81c1e72aae201a92020b4",
}

// TestBundledCertificates checks every shipped certificate is intact
// (its self-signature verifies, so no byte was changed), is the one
// pinned for its Region, and looks like AWS's: RSA-2048, Amazon's
// subject, valid today and for long after.
func TestBundledCertificates(t *testing.T) {
	b, err := AWSBundle()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != len(bundledSHA256) {
		t.Errorf("bundle has %d Regions, %d pinned", len(b), len(bundledSHA256))
	}
	at := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	for region, want := range bundledSHA256 {
		t.Run(region, func(t *testing.T) {
			cert := b[region]
			if cert == nil {
				t.Fatalf("no certificate for %s", region)
			}
			if got := fmt.Sprintf("%x", sha256.Sum256(cert.Raw)); got != want {
				t.Errorf("SHA-256 %s, pinned %s: not the certificate for %s", got, want, region)
			}
			if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
				t.Errorf("self-signature: %v", err)
			}
			if k, ok := cert.PublicKey.(*rsa.PublicKey); !ok || k.N.BitLen() != 2048 {
				t.Errorf("public key %T, want RSA-2048", cert.PublicKey)
			}
			if cert.Subject.String() != cert.Issuer.String() || len(cert.Subject.Organization) != 1 || cert.Subject.Organization[0] != "Amazon Web Services LLC" {
				t.Errorf("subject %v issuer %v", cert.Subject, cert.Issuer)
			}
			if at.Before(cert.NotBefore) || at.AddDate(100, 0, 0).After(cert.NotAfter) {
				t.Errorf("valid %v..%v", cert.NotBefore, cert.NotAfter)
			}
		})
	}
}

func TestParseBundleRefuses(t *testing.T) {
	one := string(awsBundle[strings.Index(string(awsBundle), "-----BEGIN CERTIFICATE-----\nRegion: us-east-1\n"):])
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
