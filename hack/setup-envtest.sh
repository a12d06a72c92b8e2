#!/usr/bin/env bash
# Builds kube-apiserver and etcd for envtest from the Go module proxy (no
# prebuilt binary downloads are reachable where this project is developed and
# tested) and caches them by version. Prints the directory to use as
# KUBEBUILDER_ASSETS. Safe to run concurrently: a second run waits on a lock
# instead of starting a second 15-minute build, and the build happens in a
# temp directory that is moved into place atomically.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.34.4}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.5}"
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
export GOFLAGS=-mod=mod GOWORK=off CGO_ENABLED=0

# shellcheck source=hack/lib/k8s-module.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/k8s-module.sh"
log "building kube-apiserver $K8S_VERSION (first run only; ~13 min on 2 cores)"
k8s_module "$WORK/apiserver" "$K8S_VERSION" k8s.io/kubernetes/cmd/kube-apiserver
k8s_build "$WORK/apiserver" "$K8S_VERSION" k8s.io/kubernetes/cmd/kube-apiserver "$WORK/out/kube-apiserver"

log "building etcd $ETCD_VERSION"
mkdir -p "$WORK/etcd"
cd "$WORK/etcd"
go mod init aerostat.local/envtest-etcd >/dev/null 2>&1
echo "require go.etcd.io/etcd/server/v3 $ETCD_VERSION" >>go.mod
cat >tools.go <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
go mod tidy >/dev/null 2>&1 || go mod tidy
go build -trimpath -ldflags "-s -w" -o "$WORK/out/etcd" go.etcd.io/etcd/server/v3

mkdir -p "$(dirname "$DEST")"
rm -rf "$DEST.tmp" && mv "$WORK/out" "$DEST.tmp" && mv -T "$DEST.tmp" "$DEST" 2>/dev/null || true
log "cached in $DEST"
echo "$DEST"
