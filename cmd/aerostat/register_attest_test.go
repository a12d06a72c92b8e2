//go:build !agentonly

package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/go-logr/logr"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/aerostat-io/aerostat/internal/attest"
	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/cloud/fake"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
)

// TestRegisterAttested runs `register --controller` and `promote
// --controller` as a node would: signed document from its IMDS, nonce
// file, HTTPS to the controller's attestation handler (real ledger, EC2
// through the SDK against the fake). The node has no ledger flags at all.
func TestRegisterAttested(t *testing.T) {
	testRegisterAttested(t, func(args ...string) (string, error) { return runNode(t, args...) })
}

// TestAgentBuildNodeCommands runs register and promote as the node
// agent's binary (-tags agentonly: no AWS SDK, the identity document comes
// from IMDSv2 over plain net/http): attested against the controller's
// handler, and direct (1.x migration) against the ledger.
func TestAgentBuildNodeCommands(t *testing.T) {
	bin := buildBinary(t, "agentonly")
	run := func(args ...string) (string, error) { return runBinary(bin, args...) }
	t.Run("attested", func(t *testing.T) { testRegisterAttested(t, run) })
	t.Run("direct", func(t *testing.T) {
		e := newNodeEnv(t, "db masterful\n")
		for _, c := range []struct{ cmd, id, want string }{
			{"register", "i-0a", "db-master"}, {"register", "i-0b", "db-slave-1"}, {"promote", "i-0b", "db-master"},
		} {
			out, err := run(append(append([]string{c.cmd}, e.flags...), "--instance-id", c.id, "--ip", "10.0.0.9")...)
			if err != nil || strings.TrimSpace(out) != c.want {
				t.Fatalf("%s %s: %q, %v; want %s", c.cmd, c.id, out, err, c.want)
			}
		}
		if got := e.holder(t, "db-master"); got != "i-0b" {
			t.Errorf("ledger: db-master held by %s, want i-0b", got)
		}
	})
}

// runBinary runs bin and returns its stdout, and an error carrying its
// stderr when it fails.
func runBinary(bin string, args ...string) (string, error) {
	var out, errOut bytes.Buffer
	c := exec.Command(bin, args...)
	c.Stdout, c.Stderr = &out, &errOut
	if err := c.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", filepath.Base(bin), args[0], err, errOut.String())
	}
	return out.String(), nil
}

func testRegisterAttested(t *testing.T, run func(args ...string) (string, error)) {
	for k, v := range map[string]string{"AWS_CONFIG_FILE": filepath.Join(t.TempDir(), "c"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(t.TempDir(), "c"),
		"AWS_PROFILE": "", "AWS_REGION": "", "AWS_EC2_METADATA_DISABLED": "", "AWS_EC2_METADATA_SERVICE_ENDPOINT": "", "AEROSTAT_SERVER": "", "AEROSTAT_CONTROLLER": ""} {
		t.Setenv(k, v)
	}
	signer, err := fake.NewIdentitySigner("eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := attest.ParseBundle(signer.Bundle())
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktesting.NewFakeClock(seedTime)
	fleet := fake.NewFleet(clk)
	ec2srv := fake.NewServer(fleet)
	t.Cleanup(ec2srv.Close)
	ec2, err := cloud.NewEC2(context.Background(), cloud.EC2Options{Region: "eu-west-1", Endpoint: ec2srv.URL, CallsPerSecond: -1,
		MaxBackoff: time.Millisecond, Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")})
	if err != nil {
		t.Fatal(err)
	}
	store := ledgertest.New(t)
	h, err := attest.NewHandler(attest.ServerOptions{Bundle: bundle, EC2: ec2, Store: store, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	ctrl := httptest.NewTLSServer(attest.Mount(http.NotFoundHandler(), h))
	t.Cleanup(ctrl.Close)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ctrl.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	infoFile := filepath.Join(dir, "aerostat_info")
	if err := os.WriteFile(infoFile, []byte("db masterful\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	node := func(tags map[string]string) []string {
		id := fleet.Launch(1, tags)[0]
		in, _ := fleet.Instance(id)
		m := fake.NewIMDS(cloud.Identity{InstanceID: in.ID, PrivateIP: in.PrivateIP, Region: "eu-west-1"})
		m.Sign(signer, in.LaunchTime)
		s := httptest.NewServer(m)
		t.Cleanup(s.Close)
		return []string{"--controller", ctrl.URL, "--controller-ca-file", caFile, "--imds-endpoint", s.URL,
			"--nonce-file", filepath.Join(t.TempDir(), "nonce"), "--info-file", infoFile, "--loglevel", "ERROR", "--timeout", "30s"}
	}
	db := map[string]string{attest.TagService: "db"}
	a, b, web := node(db), node(db), node(map[string]string{attest.TagService: "web"})
	for _, c := range []struct {
		cmd  string
		args []string
		want string
	}{
		{"register", a, "db-master"},
		{"register", b, "db-slave-1"},
		{"promote", b, "db-master"},
	} {
		out, err := run(append([]string{c.cmd}, c.args...)...)
		if err != nil || strings.TrimSpace(out) != c.want {
			t.Fatalf("%s: %q, %v; want %s", c.cmd, out, err, c.want)
		}
	}
	// A web instance cannot take db's master: refused at once, no retry.
	if out, err := run(append([]string{"promote"}, web...)...); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("promote by a web instance: %q, %v; want 403", out, err)
	}
	// Trusting flags make no sense in attested mode.
	for _, extra := range [][]string{{"--ip", "10.1.1.1"}, {"--instance-id", "i-1"}, {"--offline"}, {"--dry-run"}} {
		if _, err := run(append(append([]string{"register"}, a...), extra...)...); err == nil || !strings.Contains(err.Error(), "cannot be combined with --controller") {
			t.Errorf("register --controller %v: %v, want refused", extra, err)
		}
	}
	plain := append([]string{"register"}, a...)
	plain[2] = strings.Replace(ctrl.URL, "https", "http", 1)
	if _, err := run(plain...); err == nil || !strings.Contains(err.Error(), "https://") {
		t.Errorf("register --controller http://: %v, want refused", err)
	}
}

func TestAttestServeFlags(t *testing.T) {
	tls := &http.Server{TLSConfig: nil}
	if err := (&attestServeFlags{enabled: true}).mount(tls, nil, nil, nil, logr.Discard()); err == nil || !strings.Contains(err.Error(), "plain HTTP") {
		t.Errorf("--attest-nodes with --feed-insecure: %v", err)
	}
	if err := (&attestServeFlags{bundle: "x"}).mount(tls, nil, nil, nil, logr.Discard()); err == nil || !strings.Contains(err.Error(), "need --attest-nodes") {
		t.Errorf("--attest-ca-bundle alone: %v", err)
	}
}
