package controllers

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/aerostat-io/aerostat/internal/hostsfile"
	"github.com/aerostat-io/aerostat/internal/ledger"
)

// HostsConfigMapKey is the ConfigMap key holding the hosts file; CoreDNS's
// hosts plugin reads it where the ConfigMap is mounted.
const HostsConfigMapKey = "hosts"

// HostsLabel (value "true") marks the ConfigMap the controller may
// overwrite: one pointed by mistake at another ConfigMap (coredns,
// aws-auth) is refused, not replaced.
const HostsLabel = "aerostat.io/hosts-configmap"

// maxConfigMapBytes keeps the hosts file under the 1 MiB object limit with
// room for metadata (about 30,000 names).
const maxConfigMapBytes = 900 << 10

// The Role names the one ConfigMap it may read and update. There is no
// create: RBAC cannot limit create by name, and create on every ConfigMap
// of kube-system would let the controller make an aws-auth (cluster admin
// on EKS) where there is none. The ConfigMap must exist (the chart makes
// it) and carry HostsLabel before the controller writes it.
// +kubebuilder:rbac:groups="",namespace=kube-system,resources=configmaps,resourceNames=aerostat-hosts,verbs=get;update

// HostsConfigMapOptions configure a HostsConfigMap.
type HostsConfigMapOptions struct {
	Store ledger.Store
	// Reader reads the ConfigMap uncached (the manager's APIReader): a
	// cached client would watch every ConfigMap in the cluster.
	Reader client.Reader
	Writer client.Writer
	Key    types.NamespacedName
	// Interval between ledger polls (default 5 s; CoreDNS rereads its file
	// every few seconds too).
	Interval time.Duration
	// ReassertEvery re-reads the ConfigMap even when the ledger did not
	// change, to repair hand edits (default 1 min).
	ReassertEvery time.Duration
	Clock         clock.WithTicker
	Follower      ledger.FollowerOptions
}

// HostsConfigMap keeps a ConfigMap in hosts-file format, rendered by the
// same code as the agents' /etc/hosts block, so that pods resolve the names
// through CoreDNS's hosts plugin. It runs on the leader only. A failed read
// of the ledger leaves the ConfigMap as it was.
type HostsConfigMap struct {
	opts       HostsConfigMapOptions
	follower   *ledger.Follower
	last       []byte
	dirty      bool
	nextAssert time.Time
}

// NewHostsConfigMap returns a HostsConfigMap.
func NewHostsConfigMap(o HostsConfigMapOptions) *HostsConfigMap {
	if o.Interval <= 0 {
		o.Interval = 5 * time.Second
	}
	if o.ReassertEvery <= 0 {
		o.ReassertEvery = time.Minute
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Follower.Clock == nil {
		o.Follower.Clock = o.Clock
	}
	return &HostsConfigMap{opts: o, follower: ledger.NewFollower(o.Store, o.Follower)}
}

// ParseConfigMapRef checks a --hosts-configmap value, namespace/name.
func ParseConfigMapRef(s string) (types.NamespacedName, error) {
	var key types.NamespacedName
	ns, name, ok := strings.Cut(s, "/")
	if !ok {
		return key, fmt.Errorf("--hosts-configmap %q: want namespace/name, e.g. kube-system/aerostat-hosts", s)
	}
	key.Namespace, key.Name = ns, name
	if errs := validation.IsDNS1123Label(key.Namespace); len(errs) > 0 {
		return key, fmt.Errorf("--hosts-configmap %q: namespace %q: %s", s, key.Namespace, errs[0])
	}
	if errs := validation.IsDNS1123Subdomain(key.Name); len(errs) > 0 {
		return key, fmt.Errorf("--hosts-configmap %q: name %q: %s", s, key.Name, errs[0])
	}
	return key, nil
}

// NeedLeaderElection makes the manager run it on the leader only.
func (h *HostsConfigMap) NeedLeaderElection() bool { return true }

// Start syncs every Interval until ctx ends; errors are logged and
// retried.
func (h *HostsConfigMap) Start(ctx context.Context) error {
	t := h.opts.Clock.NewTicker(h.opts.Interval)
	defer t.Stop()
	for {
		if err := h.SyncOnce(ctx); err != nil && ctx.Err() == nil {
			log.FromContext(ctx).Error(err, "hosts configmap not updated", "configmap", h.opts.Key.String())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
		}
	}
}

// SyncOnce reads the ledger's changes and, when the rendered file differs
// from what the ConfigMap holds, writes it.
func (h *HostsConfigMap) SyncOnce(ctx context.Context) error {
	changed, err := h.follower.Poll(ctx)
	if err != nil {
		return fmt.Errorf("reading ledger: %w", err)
	}
	now := h.opts.Clock.Now()
	if len(changed) > 0 || h.last == nil || !now.Before(h.nextAssert) {
		h.dirty = true
	}
	if !h.dirty {
		return nil
	}
	entries, _ := hostsfile.FromRecords(h.follower.Records())
	data, err := hostsfile.File{}.Render(entries, nil)
	if err != nil {
		return err
	}
	if len(data) > maxConfigMapBytes {
		return fmt.Errorf("hosts file of %d names is %d bytes, over the %d a ConfigMap can hold", len(entries), len(data), maxConfigMapBytes)
	}
	wrote, err := h.write(ctx, string(data))
	if err != nil {
		return err
	}
	h.last, h.dirty, h.nextAssert = data, false, now.Add(h.opts.ReassertEvery)
	if wrote {
		log.FromContext(ctx).Info("hosts configmap updated", "configmap", h.opts.Key.String(), "names", len(entries))
	}
	return nil
}

// write makes the ConfigMap hold data and reports whether it had to.
func (h *HostsConfigMap) write(ctx context.Context, data string) (bool, error) {
	var cm corev1.ConfigMap
	err := h.opts.Reader.Get(ctx, h.opts.Key, &cm)
	if apierrors.IsNotFound(err) {
		return false, fmt.Errorf("configmap %s does not exist: create it with label %s=true (the Helm chart does); the controller may not create ConfigMaps", h.opts.Key, HostsLabel)
	}
	if err != nil {
		return false, fmt.Errorf("reading configmap %s: %w", h.opts.Key, err)
	}
	if cm.Labels[HostsLabel] != "true" {
		return false, fmt.Errorf("configmap %s lacks label %s=true: refusing to overwrite a ConfigMap Aerostat does not manage", h.opts.Key, HostsLabel)
	}
	if cm.Data[HostsConfigMapKey] == data {
		return false, nil
	}
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data[HostsConfigMapKey] = data
	// An update carries the resourceVersion read: a concurrent writer makes
	// it fail, and the next tick retries on fresh data.
	if err := h.opts.Writer.Update(ctx, &cm); err != nil {
		return false, fmt.Errorf("updating configmap %s: %w", h.opts.Key, err)
	}
	return true, nil
}
