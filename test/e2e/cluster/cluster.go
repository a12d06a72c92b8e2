// Package cluster boots a one-node Kubernetes cluster from real components
// on this machine for the end-to-end test: etcd and kube-apiserver (as
// hack/setup-envtest.sh builds them), kube-controller-manager,
// kube-scheduler, kube-proxy, CoreDNS and a kubelet (hack/setup-cluster.sh),
// and containerd with runc and the bridge CNI plugin from Debian. Every path
// it writes is under its own directory; the network is one bridge inside the
// machine. Stop tears everything down, also after a failed start.
package cluster

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/rest"
)

// Options says where the binaries are and how to name things.
type Options struct {
	// Envtest holds kube-apiserver and etcd (KUBEBUILDER_ASSETS).
	Envtest string
	// Bins holds kubelet, kube-controller-manager, kube-scheduler,
	// kube-proxy and coredns (hack/setup-cluster.sh).
	Bins string
	// Dir is the cluster's own directory; short, as containerd's socket
	// path must fit in 108 bytes.
	Dir string
	// Bridge is the Linux bridge the pods attach to; at most 15 bytes.
	Bridge string
	// PodCIDR is the bridge's subnet; its first address is the node's IP,
	// where the apiserver, CoreDNS and anything the test serves to pods
	// listen.
	PodCIDR string
	// ServiceCIDR is the Service ClusterIP range.
	ServiceCIDR string
	// Images are OCI archives imported into containerd before the kubelet
	// starts; SandboxImage is the pause image's name among them.
	Images       []string
	SandboxImage string
	// Logf reports progress (t.Logf).
	Logf func(format string, args ...any)
}

// NodeName is the one node's name.
const NodeName = "aerostat-e2e"

// Cluster is a running one-node cluster.
type Cluster struct {
	opts   Options
	NodeIP string
	// AdminConfig is a cluster-admin rest config; AdminKubeconfig its file.
	AdminConfig     *rest.Config
	AdminKubeconfig string
	// AuditLog is the apiserver's audit log (JSON lines, metadata level).
	AuditLog string

	apiPort  int
	etcdURL  string
	procs    []*proc
	teardown []func() error
}

// Start boots the cluster and waits until the node is Ready. On error the
// parts already started are stopped before it returns.
func Start(ctx context.Context, opts Options) (c *Cluster, err error) {
	ip, _, err := net.ParseCIDR(opts.PodCIDR)
	if err != nil {
		return nil, fmt.Errorf("pod CIDR %q: %w", opts.PodCIDR, err)
	}
	ip4 := ip.To4()
	ip4[3] = 1
	c = &Cluster{opts: opts, NodeIP: ip4.String()}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.Stop(context.WithoutCancel(ctx)))
			c = nil
		}
	}()
	steps := []struct {
		what string
		fn   func(context.Context) error
	}{
		{"preflight", c.preflight},
		{"bridge", c.startBridge},
		{"credentials", c.writeCredentials},
		{"etcd", c.startEtcd},
		{"kube-apiserver", c.startAPIServer},
		{"controller-manager and scheduler", c.startControllers},
		{"kube-proxy and CoreDNS", c.startNetworking},
		{"containerd", c.startContainerd},
		{"kubelet", c.startKubelet},
		{"a probe pod", c.probePod},
	}
	for _, s := range steps {
		start := time.Now()
		if err := s.fn(ctx); err != nil {
			return c, fmt.Errorf("starting the cluster: %s: %w", s.what, err)
		}
		opts.Logf("cluster: %s up in %s", s.what, time.Since(start).Round(100*time.Millisecond))
	}
	return c, nil
}

// Unsupported says why this machine cannot run the cluster at all (not
// Linux, not root), or "" when it can try. The e2e fails with it: a
// machine that cannot run containers is a failure to report, not a pass.
func Unsupported() string {
	if os.Getenv("GOOS") != "" && os.Getenv("GOOS") != "linux" {
		return "the e2e cluster runs only on Linux"
	}
	if _, err := os.Stat("/proc/self/mountinfo"); err != nil {
		return "the e2e cluster runs only on Linux"
	}
	if os.Geteuid() != 0 {
		return "the e2e cluster needs root (it runs containerd, a kubelet and a bridge)"
	}
	return ""
}

func (c *Cluster) preflight(context.Context) error {
	for _, b := range []string{"containerd", "containerd-shim-runc-v2", "runc", "ctr", "iptables", "ip"} {
		if _, err := exec.LookPath(b); err != nil {
			return fmt.Errorf("%s is not installed (apt-get install containerd runc containernetworking-plugins iptables iproute2): %w", b, err)
		}
	}
	for _, b := range []string{"bridge", "host-local", "loopback"} {
		if _, err := os.Stat(filepath.Join(cniBinDir, b)); err != nil {
			return fmt.Errorf("CNI plugin %s: %w (apt-get install containernetworking-plugins)", b, err)
		}
	}
	for _, b := range []string{"kubelet", "kube-controller-manager", "kube-scheduler", "kube-proxy", "coredns"} {
		if _, err := os.Stat(filepath.Join(c.opts.Bins, b)); err != nil {
			return fmt.Errorf("%w (run hack/setup-cluster.sh)", err)
		}
	}
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(c.opts.Envtest, b)); err != nil {
			return fmt.Errorf("%w (run hack/setup-envtest.sh)", err)
		}
	}
	return os.MkdirAll(c.opts.Dir, 0o755)
}

// cniBinDir is where Debian's containernetworking-plugins installs.
const cniBinDir = "/usr/lib/cni"

func (c *Cluster) path(elem ...string) string {
	return filepath.Join(append([]string{c.opts.Dir}, elem...)...)
}

// startBridge makes the bridge with the node's IP before anything listens
// on it; the CNI bridge plugin then attaches pods to it.
func (c *Cluster) startBridge(context.Context) error {
	_, n, _ := net.ParseCIDR(c.opts.PodCIDR)
	ones, _ := n.Mask.Size()
	c.teardown = append(c.teardown, func() error {
		if err := run("ip", "link", "show", c.opts.Bridge); err != nil {
			return nil
		}
		return run("ip", "link", "delete", c.opts.Bridge)
	})
	// A run killed before its teardown (the caller holds the machine's e2e
	// lock, so the bridge is not another run's) leaves its bridge behind.
	if run("ip", "link", "show", c.opts.Bridge) == nil {
		if err := run("ip", "link", "delete", c.opts.Bridge); err != nil {
			return err
		}
	}
	if err := run("ip", "link", "add", c.opts.Bridge, "type", "bridge"); err != nil {
		return err
	}
	if err := run("ip", "addr", "add", fmt.Sprintf("%s/%d", c.NodeIP, ones), "dev", c.opts.Bridge); err != nil {
		return err
	}
	if err := run("ip", "link", "set", c.opts.Bridge, "up"); err != nil {
		return err
	}
	// Pods reach Services through the host: forwarding must be on.
	return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644)
}

const (
	adminToken   = "e2e-admin-token"
	kubeletToken = "e2e-kubelet-token"
)

// writeCredentials writes the token file and the service-account key.
func (c *Cluster) writeCredentials(context.Context) error {
	if err := os.MkdirAll(c.path("pki"), 0o700); err != nil {
		return err
	}
	tokens := fmt.Sprintf("%s,admin,admin,\"system:masters\"\n%s,system:node:%s,kubelet,\"system:nodes\"\n", adminToken, kubeletToken, NodeName)
	if err := os.WriteFile(c.path("pki", "tokens.csv"), []byte(tokens), 0o600); err != nil {
		return err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("making the service-account key: %w", err)
	}
	der := x509.MarshalPKCS1PrivateKey(key)
	return os.WriteFile(c.path("pki", "sa.key"), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: der}), 0o600)
}

func (c *Cluster) startEtcd(ctx context.Context) error {
	client, peer := freePort(), freePort()
	p, err := c.spawn("etcd", filepath.Join(c.opts.Envtest, "etcd"),
		"--data-dir", c.path("etcd"),
		"--listen-client-urls", fmt.Sprintf("http://127.0.0.1:%d", client),
		"--advertise-client-urls", fmt.Sprintf("http://127.0.0.1:%d", client),
		"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peer),
		"--initial-advertise-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peer),
		"--initial-cluster", fmt.Sprintf("default=http://127.0.0.1:%d", peer),
		"--unsafe-no-fsync")
	if err != nil {
		return err
	}
	c.etcdURL = fmt.Sprintf("http://127.0.0.1:%d", client)
	return waitHTTP(ctx, p, c.etcdURL+"/health", nil)
}

func (c *Cluster) startAPIServer(ctx context.Context) error {
	c.apiPort = freePort()
	// Every request is audited (metadata only): the e2e reads what the
	// chart's ServiceAccounts were denied.
	policy := "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n"
	if err := os.WriteFile(c.path("pki", "audit-policy.yaml"), []byte(policy), 0o644); err != nil {
		return err
	}
	c.AuditLog = c.path("logs", "audit.log")
	p, err := c.spawn("kube-apiserver", filepath.Join(c.opts.Envtest, "kube-apiserver"),
		"--etcd-servers", c.etcdURL,
		"--bind-address", c.NodeIP,
		"--advertise-address", c.NodeIP,
		"--secure-port", fmt.Sprint(c.apiPort),
		"--cert-dir", c.path("pki", "apiserver"),
		"--token-auth-file", c.path("pki", "tokens.csv"),
		"--authorization-mode", "Node,RBAC",
		"--service-account-key-file", c.path("pki", "sa.key"),
		"--service-account-signing-key-file", c.path("pki", "sa.key"),
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range", c.opts.ServiceCIDR,
		"--allow-privileged=true",
		"--audit-policy-file", c.path("pki", "audit-policy.yaml"),
		"--audit-log-path", c.AuditLog)
	if err != nil {
		return err
	}
	caFile := c.path("pki", "apiserver", "apiserver.crt")
	if err := waitFile(ctx, p, caFile); err != nil {
		return err
	}
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	c.AdminConfig = &rest.Config{
		Host:            fmt.Sprintf("https://%s:%d", c.NodeIP, c.apiPort),
		BearerToken:     adminToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: ca},
		QPS:             50, Burst: 100,
	}
	c.AdminKubeconfig = c.path("admin.kubeconfig")
	if err := c.writeKubeconfig(c.AdminKubeconfig, "admin", adminToken); err != nil {
		return err
	}
	if err := c.writeKubeconfig(c.path("kubelet.kubeconfig"), "kubelet", kubeletToken); err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	return waitHTTP(ctx, p, c.AdminConfig.Host+"/readyz", &http.Client{
		Timeout:   5 * time.Second,
		Transport: &bearer{token: adminToken, base: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}},
	})
}

func (c *Cluster) writeKubeconfig(path, user, token string) error {
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: %s
  user:
    token: %s
contexts:
- name: e2e
  context: {cluster: e2e, user: %s}
current-context: e2e
`, c.AdminConfig.Host, c.path("pki", "apiserver", "apiserver.crt"), user, token, user)
	return os.WriteFile(path, []byte(kc), 0o600)
}

func (c *Cluster) startControllers(context.Context) error {
	_, err := c.spawn("kube-controller-manager", filepath.Join(c.opts.Bins, "kube-controller-manager"),
		"--kubeconfig", c.AdminKubeconfig,
		"--leader-elect=false",
		"--bind-address", "127.0.0.1",
		"--secure-port", fmt.Sprint(freePort()),
		"--service-account-private-key-file", c.path("pki", "sa.key"),
		"--root-ca-file", c.path("pki", "apiserver", "apiserver.crt"),
	)
	if err != nil {
		return err
	}
	_, err = c.spawn("kube-scheduler", filepath.Join(c.opts.Bins, "kube-scheduler"),
		"--kubeconfig", c.AdminKubeconfig,
		"--leader-elect=false",
		"--bind-address", "127.0.0.1",
		"--secure-port", fmt.Sprint(freePort()))
	return err
}

// startNetworking runs kube-proxy (iptables; its rules are removed with
// --cleanup at teardown) and CoreDNS on the node's IP, which the kubelet
// hands to pods as their nameserver.
func (c *Cluster) startNetworking(ctx context.Context) error {
	proxy := filepath.Join(c.opts.Bins, "kube-proxy")
	cleanup := func() error { return run(proxy, "--cleanup", "--proxy-mode", "iptables") }
	// A killed run's rules are still there: they would send Service
	// traffic to its dead endpoints.
	if err := cleanup(); err != nil {
		return fmt.Errorf("removing an earlier run's iptables rules: %w", err)
	}
	c.teardown = append(c.teardown, cleanup)
	_, err := c.spawn("kube-proxy", proxy,
		"--kubeconfig", c.AdminKubeconfig,
		"--hostname-override", NodeName,
		"--proxy-mode", "iptables",
		"--cluster-cidr", c.opts.PodCIDR,
		"--conntrack-max-per-core=0",
		"--iptables-localhost-nodeports=false",
		"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", freePort()),
		"--healthz-bind-address", fmt.Sprintf("127.0.0.1:%d", freePort()))
	if err != nil {
		return err
	}
	ready := freePort()
	corefile := fmt.Sprintf(`.:53 {
    bind %s
    errors
    ready 127.0.0.1:%d
    kubernetes cluster.local {
        kubeconfig %s e2e
    }
}
`, c.NodeIP, ready, c.AdminKubeconfig)
	if err := os.WriteFile(c.path("Corefile"), []byte(corefile), 0o644); err != nil {
		return err
	}
	p, err := c.spawn("coredns", filepath.Join(c.opts.Bins, "coredns"), "-conf", c.path("Corefile"))
	if err != nil {
		return err
	}
	return waitHTTP(ctx, p, fmt.Sprintf("http://127.0.0.1:%d/ready", ready), nil)
}

// HostPath returns a path under the cluster's directory (for hostPath
// volumes and the node's throwaway /etc).
func (c *Cluster) HostPath(elem ...string) string { return c.path(elem...) }

// Logs returns the tail of each component's log, for a failure report.
func (c *Cluster) Logs(lines int) string {
	var b strings.Builder
	for _, p := range c.procs {
		data, _ := os.ReadFile(p.log)
		all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(all) > lines {
			all = all[len(all)-lines:]
		}
		fmt.Fprintf(&b, "==> %s (%s)\n%s\n", p.name, p.log, strings.Join(all, "\n"))
	}
	return b.String()
}
