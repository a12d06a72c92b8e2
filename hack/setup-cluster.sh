#!/usr/bin/env bash
# Builds kubelet, kube-controller-manager, kube-scheduler and kube-proxy for
# the one-node e2e cluster (test/e2e) from the Go module proxy, at the same
# Kubernetes version and in the same throwaway-module way as
# hack/setup-envtest.sh (so the shared packages come from one compile cache),
# plus a CoreDNS with only the plugins the cluster uses, and caches them by
# version. Prints the directory holding them. Safe to run concurrently: a
# second run waits on a lock; the build happens in a temp directory moved into
# place atomically.
set -euo pipefail

# shellcheck source=hack/lib/k8s-module.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/k8s-module.sh"
CACHE="${AEROSTAT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aerostat}"
DEST="$CACHE/cluster/k8s-${K8S_VERSION}-coredns-${COREDNS_VERSION}-$(go env GOOS)-$(go env GOARCH)"
CMDS=(kubelet kube-controller-manager kube-scheduler kube-proxy)

# The node's runtime comes from Debian: containerd, runc, the CNI plugins,
# iptables for kube-proxy. Installed when missing (as root; the e2e says
# what is missing otherwise).
if [[ "$(id -u)" == 0 ]] && ! { command -v containerd && command -v runc && [[ -x /usr/lib/cni/bridge ]] && command -v iptables; } >/dev/null; then
	echo "setup-cluster: installing containerd, runc, containernetworking-plugins, iptables" >&2
	apt-get update -qq >&2 && apt-get install -y -qq containerd runc containernetworking-plugins iptables >&2
fi

ready() {
	local c
	for c in "${CMDS[@]}" coredns; do [[ -x "$DEST/$c" ]] || return 1; done
}
if ready; then
	echo "$DEST"
	exit 0
fi
mkdir -p "$CACHE/cluster"
if command -v flock >/dev/null; then
	exec 9>"$CACHE/cluster/.lock"
	flock 9
	if ready; then
		echo "$DEST"
		exit 0
	fi
fi
WORK="$(mktemp -d "$CACHE/cluster/build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
log() { echo "setup-cluster: $*" >&2; }
pkgs=()
for c in "${CMDS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
log "building ${CMDS[*]} $K8S_VERSION and coredns $COREDNS_VERSION (first run only; minutes on 2 cores)"
k8s_module "$WORK/mod"
k8s_build "$WORK/mod" "$WORK/out" "${pkgs[@]}" ./coredns

mkdir -p "$(dirname "$DEST")"
rm -rf "$DEST.tmp" && mv "$WORK/out" "$DEST.tmp" && mv -T "$DEST.tmp" "$DEST" 2>/dev/null || true
log "cached in $DEST"
echo "$DEST"
