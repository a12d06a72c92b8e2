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

# kube-apiserver: a throwaway module that requires k8s.io/kubernetes and points
# each staging module at its published v0.Y.Z, as kubernetes' own go.mod
# replaces them with ./staging paths that a module download does not carry.
log "building kube-apiserver $K8S_VERSION (first run only; ~13 min on 2 cores)"
STAGING="v0.${K8S_VERSION#v1.}"
mkdir -p "$WORK/apiserver"
cd "$WORK/apiserver"
go mod init aerostat.local/envtest-apiserver >/dev/null 2>&1
GOMOD="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
{
	echo "require k8s.io/kubernetes $K8S_VERSION"
	grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$GOMOD" |
		awk -v v="$STAGING" '{print "replace " $1 " => " $1 " " v}'
} >>go.mod
cat >tools.go <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
GO
go mod tidy >/dev/null 2>&1 || go mod tidy
go build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)" \
	-o "$WORK/out/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver

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
