package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// containerdConfig restricts oom_score_adj (this VM lacks CAP_SYS_RESOURCE,
// so runc's write of the sandbox's -998 fails with "can't get final child's
// PID from pipe: EOF") and keeps every path under the cluster's directory.
const containerdConfig = `version = 2
root = %[1]q
state = %[2]q
[grpc]
  address = %[3]q
[plugins."io.containerd.internal.v1.opt"]
  path = %[4]q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[5]q
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[6]q
    conf_dir = %[7]q
`

func (c *Cluster) socket() string { return c.path(containerdSocket) }

func (c *Cluster) startContainerd(ctx context.Context) error {
	cniConf := c.path("cni", "net.d")
	if err := os.MkdirAll(cniConf, 0o755); err != nil {
		return err
	}
	conflist := map[string]any{
		"cniVersion": "0.4.0",
		"name":       "aerostat-e2e",
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": c.opts.Bridge, "isGateway": true,
				"ipMasq": false, "hairpinMode": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"dataDir": c.path("cni", "ipam"),
					"ranges":  [][]map[string]string{{{"subnet": c.opts.PodCIDR, "gateway": c.NodeIP}}},
					"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
				},
			},
			map[string]any{"type": "loopback"},
		},
	}
	data, err := json.MarshalIndent(conflist, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(cniConf, "10-aerostat-e2e.conflist"), data, 0o644); err != nil {
		return err
	}
	cfg := fmt.Sprintf(containerdConfig, c.path("containerd", "root"), c.path("containerd", "state"), c.socket(),
		c.path("containerd", "opt"), c.opts.SandboxImage, cniBinDir, cniConf)
	if err := os.MkdirAll(c.path("containerd"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(c.path("containerd", "config.toml"), []byte(cfg), 0o644); err != nil {
		return err
	}
	// Shims outlive containerd: kill every container and shim it started.
	c.teardown = append(c.teardown, c.killShims)
	p, err := c.spawn("containerd", "containerd", "--config", c.path("containerd", "config.toml"))
	if err != nil {
		return err
	}
	if err := waitFile(ctx, p, c.socket()); err != nil {
		return err
	}
	for _, img := range c.opts.Images {
		if err := c.ctr(ctx, "images", "import", img); err != nil {
			return fmt.Errorf("importing %s: %w", img, err)
		}
	}
	return nil
}

func (c *Cluster) ctr(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "ctr", append([]string{"--address", c.socket(), "-n", "k8s.io"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// killShims kills the containers and the shims that containerd started for
// this cluster (shims outlive containerd; their command lines name its
// socket, under the cluster's directory).
func (c *Cluster) killShims() error {
	killNaming([]string{c.opts.Dir})
	return nil
}

const kubeletConfig = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
failCgroupV1: false
containerRuntimeEndpoint: unix://%[1]s
address: %[2]s
port: %[3]d
healthzBindAddress: 127.0.0.1
healthzPort: %[4]d
readOnlyPort: 0
staticPodPath: %[5]s
podLogsDir: %[6]s
evictionHard: {}
imageGCHighThresholdPercent: 100
clusterDNS: [%[2]s]
clusterDomain: cluster.local
resolvConf: %[7]s
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
authorization:
  mode: Webhook
`

func (c *Cluster) startKubelet(ctx context.Context) error {
	for _, d := range []string{"manifests", "pod-logs", "kubelet"} {
		if err := os.MkdirAll(c.path(d), 0o755); err != nil {
			return err
		}
	}
	// Pods see the cluster's nameserver only; this machine's resolver is
	// not theirs.
	if err := os.WriteFile(c.path("resolv.conf"), []byte("nameserver "+c.NodeIP+"\n"), 0o644); err != nil {
		return err
	}
	healthz := freePort()
	cfg := fmt.Sprintf(kubeletConfig, c.socket(), c.NodeIP, freePort(), healthz, c.path("manifests"), c.path("pod-logs"), c.path("resolv.conf"))
	if err := os.WriteFile(c.path("kubelet-config.yaml"), []byte(cfg), 0o644); err != nil {
		return err
	}
	c.teardown = append(c.teardown, c.unmountAll)
	p, err := c.spawn("kubelet", filepath.Join(c.opts.Bins, "kubelet"),
		"--config", c.path("kubelet-config.yaml"),
		"--kubeconfig", c.path("kubelet.kubeconfig"),
		"--root-dir", c.path("kubelet"),
		"--hostname-override", NodeName,
		"--node-ip", c.NodeIP)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(c.AdminConfig)
	if err != nil {
		return err
	}
	return wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		if p.exited() {
			return false, fmt.Errorf("kubelet exited: %s", p.tail(20))
		}
		n, err := cs.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
}

// unmountAll unmounts whatever the kubelet and containerd mounted under
// the cluster's directory, deepest first.
func (c *Cluster) unmountAll() error { return unmountUnder(c.opts.Dir) }
