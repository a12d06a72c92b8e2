#!/usr/bin/env bash
# Builds kube-apiserver and etcd for envtest from the Go module proxy (no
# prebuilt binary downloads are reachable where this project is developed and
# tested) and caches them by version. Prints the directory to use as
# KUBEBUILDER_ASSETS. Safe to run concurrently: a second run waits on a lock
# instead of starting a second 15-minute build, and the build happens in a
# temp directory that is moved into place atomically.
set -euo pipefail

# shellcheck source=hack/lib/k8s-module.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/k8s-module.sh"
CACHE="${AEROSTAT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aerostat}"
DEST="$CACHE/envtest/k8s-${K8S_VERSION}-etcd-${ETCD_VERSION}-$(go env GOOS)-$(go env GOARCH)"

if [[ -x "$DEST/kube-apiserver" && -x "$DEST/etcd" ]]; then
	echo "$DEST"
	exit 0
fi

mkdir -p "$CACHE/envtest"
if command -v flock >/dev/null; then
	exec 9>"$CACHE/envtest/.lock"
	flock 9
	if [[ -x "$DEST/kube-apiserver" && -x "$DEST/etcd" ]]; then
		echo "$DEST"
		exit 0
	fi
fi
WORK="$(mktemp -d "$CACHE/envtest/build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
log() { echo "setup-envtest: $*" >&2; }
log "building kube-apiserver $K8S_VERSION and etcd $ETCD_VERSION (first run only; minutes on 2 cores)"
k8s_module "$WORK/mod"
k8s_build "$WORK/mod" "$WORK/out" k8s.io/kubernetes/cmd/kube-apiserver go.etcd.io/etcd/server/v3
mv "$WORK/out/server" "$WORK/out/etcd"

mkdir -p "$(dirname "$DEST")"
rm -rf "$DEST.tmp" && mv "$WORK/out" "$DEST.tmp" && mv -T "$DEST.tmp" "$DEST" 2>/dev/null || true
log "cached in $DEST"
echo "$DEST"
