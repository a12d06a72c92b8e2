package attest_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/aerostat-io/aerostat/internal/attest"
	"github.com/aerostat-io/aerostat/internal/attestclient"
	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/cloud/fake"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
	"github.com/aerostat-io/aerostat/internal/naming"
)

func TestMain(m *testing.M) { ledgertest.Main(m) }

var t0 = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

const region = "eu-west-1"

// RSA-2048 keys take a while; every test shares these.
var (
	signersOnce      sync.Once
	aws, attacker    *fake.IdentitySigner
	errSignersCreate error
)

func signers(t *testing.T) (*fake.IdentitySigner, *fake.IdentitySigner) {
	t.Helper()
	signersOnce.Do(func() {
		if aws, errSignersCreate = fake.NewIdentitySigner(region, "us-east-1"); errSignersCreate != nil {
			return
		}
		// The attacker's own "AWS" certificate for the same Region.
		attacker, errSignersCreate = fake.NewIdentitySigner(region)
	})
	if errSignersCreate != nil {
		t.Fatal(errSignersCreate)
	}
	return aws, attacker
}

type world struct {
	fleet   *fake.Fleet
	store   *ledger.Mongo
	srv     *httptest.Server
	signer  *fake.IdentitySigner
	handler *attest.Handler
}

func isolateAWS(t *testing.T) {
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_PROFILE": "", "AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_EC2": "", "AWS_REGION": "",
		"AWS_EC2_METADATA_DISABLED": "", "AWS_EC2_METADATA_SERVICE_ENDPOINT": "", "AWS_CA_BUNDLE": "",
	} {
		t.Setenv(k, v)
	}
}

func newWorld(t *testing.T, accounts ...string) *world {
	t.Helper()
	isolateAWS(t)
	signer, _ := signers(t)
	bundle, err := attest.ParseBundle(signer.Bundle())
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktesting.NewFakeClock(t0)
	fleet := fake.NewFleet(clk)
	ec2srv := fake.NewServer(fleet)
	t.Cleanup(ec2srv.Close)
	ec2, err := cloud.NewEC2(context.Background(), cloud.EC2Options{Region: region, Endpoint: ec2srv.URL, CallsPerSecond: -1,
		MaxBackoff: time.Millisecond, Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")})
	if err != nil {
		t.Fatal(err)
	}
	store := ledgertest.New(t)
	h, err := attest.NewHandler(attest.ServerOptions{Bundle: bundle, EC2: ec2, Store: store, Accounts: accounts, DefaultHoldBack: time.Minute, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(attest.Mount(http.NotFoundHandler(), h))
	t.Cleanup(srv.Close)
	return &world{fleet: fleet, store: store, srv: srv, signer: signer, handler: h}
}

func (w *world) launch(t *testing.T, tags map[string]string) naming.Instance {
	t.Helper()
	id := w.fleet.Launch(1, tags)[0]
	in, _ := w.fleet.Instance(id)
	return in
}

// node is an instance's own view: its IMDS (signing with the world's
// AWS key) and its nonce file.
type node struct {
	inst      naming.Instance
	imdsURL   string
	nonceFile string
}

func (w *world) node(t *testing.T, in naming.Instance) node {
	t.Helper()
	m := fake.NewIMDS(cloud.Identity{InstanceID: in.ID, PrivateIP: in.PrivateIP, Region: region})
	m.Sign(w.signer, in.LaunchTime)
	s := httptest.NewServer(m)
	t.Cleanup(s.Close)
	return node{inst: in, imdsURL: s.URL, nonceFile: filepath.Join(t.TempDir(), "nonce")}
}

// request builds what `aerostat register --controller` sends.
func (n node) request(t *testing.T, info string) attest.Request {
	t.Helper()
	signed, err := attestclient.Evidence(context.Background(), n.imdsURL)
	if err != nil {
		t.Fatal(err)
	}
	nonce, err := attestclient.Nonce(n.nonceFile)
	if err != nil {
		t.Fatal(err)
	}
	return attest.Request{Signed: signed, Nonce: nonce, InstanceID: n.inst.ID, Info: info}
}

func (w *world) post(req attest.Request, promote bool) (string, error) {
	return attestclient.Post(context.Background(), w.srv.Client(), w.srv.URL, req, promote)
}

// doc is an identity document as AWS writes it, for forging variants.
func doc(in naming.Instance) map[string]any {
	return map[string]any{"instanceId": in.ID, "privateIp": in.PrivateIP, "region": region, "availabilityZone": region + "a",
		"accountId": fake.FakeAccountID, "pendingTime": in.LaunchTime.Format(time.RFC3339), "version": "2017-09-30"}
}

func sign(t *testing.T, s *fake.IdentitySigner, signRegion string, d map[string]any) string {
	t.Helper()
	b, _ := json.Marshal(d)
	out, err := s.Sign(signRegion, b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAttestedRegisterAndPromote(t *testing.T) {
	w := newWorld(t)
	tags := map[string]string{attest.TagService: "db", attest.TagServiceType: "masterful"}
	a := w.node(t, w.launch(t, tags))
	b := w.node(t, w.launch(t, tags))
	ra, rb := a.request(t, "db masterful"), b.request(t, "db masterful")

	got := map[string]string{}
	for _, c := range []struct {
		who     string
		req     attest.Request
		promote bool
		want    string
	}{
		{"a", ra, false, "db-master"},
		{"b", rb, false, "db-slave-1"},
		{"a again (same nonce)", ra, false, "db-master"},
		{"b promotes", rb, true, "db-master"},
	} {
		name, err := w.post(c.req, c.promote)
		if err != nil || name != c.want {
			t.Fatalf("%s: got %q, %v; want %s", c.who, name, err, c.want)
		}
		got[c.who] = name
	}
	// The old master took the lowest free slave name; IPs are EC2's.
	recs, err := w.store.Records(context.Background(), "db")
	if err != nil {
		t.Fatal(err)
	}
	held := map[string]naming.Record{}
	for _, r := range recs {
		if !r.Free() {
			held[r.Hostname] = r
		}
	}
	if m := held["db-master"]; m.InstanceID != b.inst.ID || m.IP != b.inst.PrivateIP {
		t.Errorf("db-master = %+v, want %s at %s", m, b.inst.ID, b.inst.PrivateIP)
	}
	if s := held["db-slave-1"]; s.InstanceID != a.inst.ID || s.IP != a.inst.PrivateIP {
		t.Errorf("db-slave-1 = %+v, want %s at %s", s, a.inst.ID, a.inst.PrivateIP)
	}
	// Promoting the master again is a conflict, not a refusal.
	var se *attestclient.StatusError
	if _, err := w.post(rb, true); !errors.As(err, &se) || se.Status != http.StatusConflict {
		t.Errorf("promote of the master: %v, want 409", err)
	}
}

// TestAttacksRefused tries each forgery and sees it refused, with the
// ledger unchanged.
func TestAttacksRefused(t *testing.T) {
	w := newWorld(t)
	_, evil := signers(t)
	dbTags := map[string]string{attest.TagService: "db", attest.TagServiceType: "masterful"}
	victim := w.node(t, w.launch(t, dbTags))
	vreq := victim.request(t, "db masterful")
	if name, err := w.post(vreq, false); err != nil || name != "db-master" {
		t.Fatalf("victim register: %q, %v", name, err)
	}
	web := w.node(t, w.launch(t, map[string]string{attest.TagService: "web"}))
	stopped := w.launch(t, dbTags)
	if err := w.fleet.Stop(stopped.ID); err != nil {
		t.Fatal(err)
	}
	gone := naming.Instance{ID: "i-0000000000000dead", PrivateIP: "10.200.0.1", LaunchTime: t0}
	other := w.node(t, w.launch(t, dbTags)) // never registered
	otherNonce := other.request(t, "db masterful").Nonce

	// tamper replaces the victim's id inside a correctly signed document
	// of other's with the same length (the content changes, the
	// signature does not).
	tamper := func(signed string) string {
		der, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(signed, "\n", ""))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(der, []byte(other.inst.ID)) {
			t.Fatal("document not found in the PKCS7")
		}
		return base64.StdEncoding.EncodeToString(bytes.ReplaceAll(der, []byte(other.inst.ID), []byte(victim.inst.ID)))
	}
	with := func(in naming.Instance, change func(map[string]any)) map[string]any {
		d := doc(in)
		if change != nil {
			change(d)
		}
		return d
	}
	cases := map[string]struct {
		req     attest.Request
		promote bool
		status  int
		want    string
	}{
		"forged signature (attacker's own key for the Region)": {
			req:    attest.Request{Signed: sign(t, evil, region, doc(other.inst)), Nonce: otherNonce, Info: "db masterful"},
			status: http.StatusForbidden, want: "signature does not verify"},
		"document edited after signing": {
			req:    attest.Request{Signed: tamper(sign(t, w.signer, region, doc(other.inst))), Nonce: otherNonce, Info: "db masterful"},
			status: http.StatusForbidden, want: "signature does not verify"},
		"document of another instance than the request names": {
			req:    attest.Request{Signed: vreq.Signed, Nonce: otherNonce, InstanceID: other.inst.ID, Info: "db masterful"},
			status: http.StatusForbidden, want: "request names"},
		"replayed document (victim's, attacker's nonce)": {
			req:     attest.Request{Signed: vreq.Signed, Nonce: otherNonce, Info: "db masterful"},
			promote: true, status: http.StatusForbidden, want: "another nonce"},
		"wrong Region's certificate": {
			req:    attest.Request{Signed: sign(t, w.signer, "us-east-1", doc(other.inst)), Nonce: otherNonce, Info: "db masterful"},
			status: http.StatusForbidden, want: "signature does not verify"},
		"Region without a certificate": {
			req:    attest.Request{Signed: sign(t, w.signer, region, with(other.inst, func(d map[string]any) { d["region"] = "ap-south-2" })), Nonce: otherNonce, Info: "db masterful"},
			status: http.StatusForbidden, want: "no certificate"},
		"instance stopped in EC2": {
			req:    attest.Request{Signed: sign(t, w.signer, region, doc(stopped)), Nonce: otherNonce, Info: "db masterful"},
			status: http.StatusForbidden, want: "not running"},
		"instance not in EC2": {
			req:    attest.Request{Signed: sign(t, w.signer, region, doc(gone)), Nonce: otherNonce, Info: "db masterful"},
			status: http.StatusForbidden, want: "not found in EC2"},
		"private IP differs from EC2's": {
			req:    attest.Request{Signed: sign(t, w.signer, region, with(other.inst, func(d map[string]any) { d["privateIp"] = "10.99.99.99" })), Nonce: otherNonce, Info: "db masterful"},
			status: http.StatusForbidden, want: "EC2 says"},
		"stale document (before the instance's last start)": {
			req:    attest.Request{Signed: sign(t, w.signer, region, with(other.inst, func(d map[string]any) { d["pendingTime"] = t0.Add(-time.Hour).Format(time.RFC3339) })), Nonce: otherNonce, Info: "db masterful"},
			status: http.StatusForbidden, want: "stale document"},
		"pendingTime in the future": {
			req:    attest.Request{Signed: sign(t, w.signer, region, with(other.inst, func(d map[string]any) { d["pendingTime"] = t0.Add(time.Hour).Format(time.RFC3339) })), Nonce: otherNonce, Info: "db masterful"},
			status: http.StatusForbidden, want: "in the future"},
		"promote of db's master by a web instance": {
			req: web.request(t, "db masterful"), promote: true, status: http.StatusForbidden, want: `tagged aerostat:service="web", not "db"`},
		"register in db by a web instance": {
			req: web.request(t, "db masterful"), status: http.StatusForbidden, want: `not "db"`},
		"service type differs from the tag": {
			req:    attest.Request{Signed: sign(t, w.signer, region, doc(other.inst)), Nonce: otherNonce, Info: "db iterative"},
			status: http.StatusForbidden, want: "aerostat:service-type"},
		"not PKCS7": {
			req:    attest.Request{Signed: base64.StdEncoding.EncodeToString([]byte(`{"instanceId":"i-1"}`)), Nonce: otherNonce, Info: "db masterful"},
			status: http.StatusForbidden, want: "not PKCS7"},
		"short nonce": {
			req:    attest.Request{Signed: sign(t, w.signer, region, doc(other.inst)), Nonce: "abc", Info: "db masterful"},
			status: http.StatusBadRequest, want: "nonce"},
		"bad info": {
			req:    attest.Request{Signed: sign(t, w.signer, region, doc(other.inst)), Nonce: otherNonce, Info: "db$ masterful"},
			status: http.StatusBadRequest, want: "info"},
	}
	before, err := w.store.Records(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := w.post(c.req, c.promote)
			var se *attestclient.StatusError
			if !errors.As(err, &se) || se.Status != c.status || !strings.Contains(se.Message, c.want) {
				t.Fatalf("got %q, %v; want %d containing %q", got, err, c.status, c.want)
			}
		})
	}
	after, err := w.store.Records(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) || after[0].InstanceID != victim.inst.ID || after[0].Rev != before[0].Rev {
		t.Fatalf("ledger changed by refused requests: before %+v, after %+v", before, after)
	}
	// The never-registered instance can still bind its own nonce: no
	// refused request above bound one for it.
	if name, err := w.post(other.request(t, "db masterful"), false); err != nil || name != "db-slave-1" {
		t.Fatalf("other's own register after the attacks: %q, %v", name, err)
	}
}

func TestAccountsAndTransport(t *testing.T) {
	w := newWorld(t, "999999999999")
	n := w.node(t, w.launch(t, map[string]string{attest.TagService: "web"}))
	req := n.request(t, "web")
	var se *attestclient.StatusError
	if _, err := w.post(req, false); !errors.As(err, &se) || se.Status != http.StatusForbidden || !strings.Contains(se.Message, "account") {
		t.Fatalf("instance of another account: %v, want 403 naming the account", err)
	}
	// The nonce is a secret: never over plain HTTP.
	if _, err := attestclient.Post(context.Background(), http.DefaultClient, strings.Replace(w.srv.URL, "https", "http", 1), req, false); err == nil || !strings.Contains(err.Error(), "https") {
		t.Fatalf("plain HTTP: %v, want refused", err)
	}
	// Without the controller's CA the TLS handshake fails.
	if _, err := attestclient.Post(context.Background(), &http.Client{}, w.srv.URL, req, false); err == nil {
		t.Fatal("untrusted certificate accepted")
	}
	// GET and oversized bodies.
	resp, err := w.srv.Client().Get(w.srv.URL + attest.RegisterPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
	big := attest.Request{Signed: strings.Repeat("A", 100<<10), Nonce: req.Nonce, Info: "web"}
	if _, err := w.post(big, false); !errors.As(err, &se) || se.Status != http.StatusBadRequest {
		t.Fatalf("100 KiB body: %v, want 400", err)
	}
}
