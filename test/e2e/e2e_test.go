//go:build e2e

// Package e2e installs the Helm chart on a one-node Kubernetes cluster built
// from real components (test/e2e/cluster) and checks what a user would look
// at: the controller's Lease, the NamingServices, the node's hosts file.
// Run with `make e2e` (also part of `make test`); it needs root on Linux.
package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/utils/clock"

	"github.com/aerostat-io/aerostat/internal/cloud/fake"
	"github.com/aerostat-io/aerostat/test/e2e/cluster"
)

const (
	podCIDR     = "10.213.0.0/16"
	serviceCIDR = "10.214.0.0/24"
	bridge      = "aerostate2e0"
	namespace   = "aerostat-system"
	release     = "aerostat"
	image       = "aerostat.local/aerostat:e2e"
	agentImage  = "aerostat.local/aerostat-agent:e2e"
	pauseImage  = "aerostat.local/pause:e2e"
	repoRoot    = "../.."
	// Each run's directory is runsDir/runsPrefix*: short, for containerd's
	// socket path, and found again by the next run if this one is killed.
	runsDir    = "/tmp"
	runsPrefix = "ae2e-"
)

// userHosts is the node's hosts file before Aerostat: every line of it must
// survive every change.
const userHosts = "127.0.0.1\tlocalhost\n# kept by the e2e: lines outside the block are the user's\n10.9.8.7\tkeep-me.example keep-me\n"

// env is what every scenario shares.
type env struct {
	c        *cluster.Cluster
	fleet    *fake.Fleet
	ec2URL   string
	hosts    string // the node's hosts file, under its throwaway /etc
	aerostat string // the static binary in the image, for the CLI checks
	kube     *kubeClients
	helm     *helm
	// provoked are the spans whose refused requests a scenario caused on
	// purpose (scenario 7's missing rule).
	provoked []window
}

func TestE2E(t *testing.T) {
	// Skipping is a decision someone writes down, never a default: a
	// machine that cannot run the cluster fails with the reason.
	if reason := os.Getenv("AEROSTAT_SKIP_E2E"); reason != "" {
		t.Skipf("SKIPPING the one-node cluster e2e: AEROSTAT_SKIP_E2E=%q", reason)
	}
	if why := cluster.Unsupported(); why != "" {
		t.Fatalf("this machine cannot run the one-node cluster e2e: %s (AEROSTAT_SKIP_E2E=<why> skips it on purpose)", why)
	}
	envtest, bins := os.Getenv("KUBEBUILDER_ASSETS"), os.Getenv("AEROSTAT_CLUSTER_BINS")
	if envtest == "" || bins == "" {
		t.Fatal("KUBEBUILDER_ASSETS (hack/setup-envtest.sh) and AEROSTAT_CLUSTER_BINS (hack/setup-cluster.sh) must be set: run make e2e")
	}
	lockMachine(t)
	// A run killed before its teardown left its processes, mounts and
	// network namespaces: this run would trip over them.
	if err := cluster.Reap(filepath.Join(runsDir, runsPrefix+"*"), "", t.Logf); err != nil {
		t.Fatalf("cleaning up after earlier runs: %v", err)
	}
	e := &env{}
	dir, err := os.MkdirTemp(runsDir, runsPrefix)
	if err != nil {
		t.Fatal(err)
	}
	// Built before the scenarios' clock starts: with a cold compile cache
	// this takes minutes.
	images := buildImages(t, e, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	startCluster(ctx, t, e, dir, images, envtest, bins)
	e.hosts = filepath.Join(dir, "node-etc", "hosts")
	e.startFakeEC2(t)

	scenarios := []struct {
		name string
		fn   func(context.Context, *testing.T, *env)
	}{
		{"1 install: leader, CRD, services Ready", scenarioInstall},
		{"2 agent writes the node's hosts file", scenarioAgent},
		{"3 launch 3, terminate 2: the hosts file follows", scenarioFleetChanges},
		{"4 leader pod deleted: the other replica leads", scenarioFailover},
		{"5 kubectl get and aerostat get show the columns", scenarioPrinterColumns},
		{"7 only the chart's ServiceAccounts and RBAC", scenarioRBAC},
		{"6 upgrade keeps names, uninstall keeps the ledger", scenarioUpgradeUninstall},
	}
	for _, s := range scenarios {
		if !t.Run(s.name, func(t *testing.T) { s.fn(ctx, t, e) }) {
			t.Logf("component logs:\n%s", e.c.Logs(40))
			t.Logf("pod logs:\n%s", podLogs(e.c.HostPath("pod-logs"), 40))
			t.FailNow()
		}
	}
}

// lockMachine serializes e2e runs on this machine: they share the bridge
// name and the subnet.
func lockMachine(t *testing.T) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "aerostat-e2e.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("opening the e2e lock: %v", err)
	}
	t.Logf("waiting for the machine's e2e lock (another run may hold it)")
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("taking the e2e lock: %v", err)
	}
	t.Cleanup(func() { f.Close() })
}

func startCluster(ctx context.Context, t *testing.T, e *env, dir string, images []string, envtest, bins string) {
	if err := os.MkdirAll(filepath.Join(dir, "node-etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "node-etc", "hosts"), []byte(userHosts), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c, err := cluster.Start(ctx, cluster.Options{
		Envtest: envtest, Bins: bins, Dir: dir, Bridge: bridge,
		PodCIDR: podCIDR, ServiceCIDR: serviceCIDR,
		Images: images, SandboxImage: pauseImage, Logf: t.Logf,
	})
	if err != nil {
		// Not a skip: this machine was meant to run containers.
		t.Fatalf("the one-node cluster did not start (this machine cannot run the e2e): %v", err)
	}
	t.Logf("cluster: node Ready %s after start", time.Since(start).Round(time.Second))
	e.c = c
	t.Cleanup(func() {
		if err := c.Stop(context.Background()); err != nil {
			t.Errorf("tearing the cluster down: %v", err)
		}
		if t.Failed() {
			t.Logf("kept %s for inspection", dir)
			return
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("removing %s: %v", dir, err)
		}
	})
	e.kube = newKubeClients(t, c)
}

// imageSpec is one image the chart runs, built from one main package the
// way the Dockerfile lays it out. A new binary with its own image is one
// more entry in images.
type imageSpec struct {
	pkg     string // main package, relative to the repository
	tags    []string
	ldflags string
	image   cluster.Image
	// report: log the image's size as a REPORT line (the agent image's
	// budget is 25 MB).
	report bool
}

func images() []imageSpec {
	return []imageSpec{
		{pkg: "./cmd/aerostat", ldflags: "-s -w -X main.version=e2e", image: cluster.Image{
			Name: image, Entrypoint: "/usr/local/bin/aerostat", User: "65532:65532", Labels: map[string]string{
				"org.opencontainers.image.title":   "aerostat",
				"org.opencontainers.image.source":  "https://github.com/aerostat-io/aerostat",
				"org.opencontainers.image.version": "e2e",
			}}},
		// The Dockerfile's agent target: the same entrypoint, user and
		// layout, from the node agent's build.
		{pkg: "./cmd/aerostat", tags: []string{"agentonly"}, ldflags: "-s -w -X main.version=e2e", report: true, image: cluster.Image{
			Name: agentImage, Entrypoint: "/usr/local/bin/aerostat", User: "65532:65532", Labels: map[string]string{
				"org.opencontainers.image.title":   "aerostat-agent",
				"org.opencontainers.image.source":  "https://github.com/aerostat-io/aerostat",
				"org.opencontainers.image.version": "e2e",
			}}},
		{pkg: "./test/e2e/pause", ldflags: "-s -w", image: cluster.Image{
			Name: pauseImage, Entrypoint: "/pause", User: "65535:65535"}},
	}
}

// buildImage builds spec's binary and writes its image as an OCI archive in
// dir; it returns the archive, the binary and the image's size.
func buildImage(dir string, spec imageSpec) (archive, binary string, size cluster.Size, err error) {
	base := strings.TrimPrefix(strings.Join(append([]string{filepath.Base(spec.pkg)}, spec.tags...), "-"), "-")
	binary = filepath.Join(dir, base)
	if err := cluster.BuildStatic(repoRoot, spec.pkg, binary, spec.ldflags, spec.tags...); err != nil {
		return "", "", size, err
	}
	img := spec.image
	img.Binary = binary
	archive = filepath.Join(dir, base+".oci.tar")
	if size, err = cluster.WriteOCIArchive(img, archive); err != nil {
		return "", "", size, err
	}
	return archive, binary, size, nil
}

// buildImages builds every image as an OCI archive for containerd.
func buildImages(t *testing.T, e *env, dir string) []string {
	var archives []string
	for _, spec := range images() {
		start := time.Now()
		archive, bin, size, err := buildImage(dir, spec)
		if err != nil {
			t.Fatal(err)
		}
		if spec.image.Name == image {
			e.aerostat = bin
		}
		archives = append(archives, archive)
		t.Logf("image %s: built in %s, %s", spec.image.Name, time.Since(start).Round(100*time.Millisecond), size)
		if spec.report {
			fi, err := os.Stat(bin)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("REPORT image %s: %s (binary %.1f MB; the Dockerfile's distroless base adds its CA certificates and tzdata)",
				spec.image.Name, size, float64(fi.Size())/1e6)
		}
	}
	return archives
}

// startFakeEC2 serves the fake EC2 Query API on the node's IP, where the
// controller pods reach it through the bridge.
func (e *env) startFakeEC2(t *testing.T) {
	e.fleet = fake.NewFleet(clock.RealClock{})
	e.fleet.Launch(3, map[string]string{"aerostat:service": "web"})
	e.fleet.Launch(3, map[string]string{"aerostat:service": "db", "aerostat:service-type": "masterful"})
	l, err := net.Listen("tcp", net.JoinHostPort(e.c.NodeIP, "0"))
	if err != nil {
		t.Fatalf("listening for the fake EC2 on the node IP: %v", err)
	}
	srv := &http.Server{Handler: fake.NewAPI(e.fleet), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	e.ec2URL = "http://" + l.Addr().String()
}

// podLogs returns the tail of every container log the kubelet wrote.
func podLogs(dir string, lines int) string {
	var b strings.Builder
	_ = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return nil
		}
		data, _ := os.ReadFile(p)
		all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(all) > lines {
			all = all[len(all)-lines:]
		}
		fmt.Fprintf(&b, "==> %s\n%s\n", strings.TrimPrefix(p, dir), strings.Join(all, "\n"))
		return nil
	})
	return b.String()
}
