# Sourced by hack/setup-envtest.sh and hack/setup-cluster.sh: the throwaway
# Go module that builds the Kubernetes, etcd and CoreDNS commands the tests
# run, from the module proxy (no prebuilt binary downloads are reachable
# here).
#
# Both scripts make the same module, so on a cold machine a package is
# compiled once for all of it, and once for our own tests too: Go's compile
# cache keys a package by its source, its dependencies' keys, the build
# flags and (without -trimpath) its directory in the module cache. So
#   - one go.mod holds kubernetes, etcd and CoreDNS (one version of grpc,
#     x/net, ... for all of them),
#   - it also requires the module of every package we build, so one both
#     sides import (k8s.io/api, client-go, protobuf, x/net, ...) resolves to
#     the same version on both sides; go.mod keeps our versions at least as
#     high as these commands' (k8s.io/* at K8S_VERSION's v0.Y.Z),
#   - builds use CGO_ENABLED=0 and no -trimpath, like make's go vet and go
#     test.
# That is over half of our source (std included), compiled once: on a cold
# 2-core machine kube-apiserver and etcd then build in 5 minutes, not 8.
#
# kubernetes' own go.mod replaces each staging module (k8s.io/api =>
# ./staging/...) with a path a module download does not carry, so the module
# points each at its published v0.Y.Z.

K8S_VERSION="${K8S_VERSION:-v1.34.4}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.7}"
COREDNS_VERSION="${COREDNS_VERSION:-v1.14.0}"
AEROSTAT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export GOFLAGS=-mod=mod GOWORK=off CGO_ENABLED=0

# k8s_module DIR makes DIR the module. CoreDNS is built as its docs describe
# a custom build: a main that imports only the plugins wanted and lists them
# in dnsserver.Directives, so the build skips the cloud DNS providers and
# tracing libraries of the full binary.
k8s_module() {
	local dir="$1"
	mkdir -p "$dir/coredns"
	(
		cd "$dir"
		go mod init aerostat.local/k8s-build >/dev/null 2>&1
		local gomod
		gomod="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
		{
			echo "require k8s.io/kubernetes $K8S_VERSION"
			echo "require go.etcd.io/etcd/server/v3 $ETCD_VERSION"
			echo "require github.com/coredns/coredns $COREDNS_VERSION"
			# The modules our packages come from, not `go list -m all`: that
			# graph's old go.mod files made tidy fetch thousands more.
			(cd "$AEROSTAT_ROOT" && go list -deps -test -tags e2e -f '{{with .Module}}{{if not .Main}}{{if not .Replace}}require {{.Path}} {{.Version}}{{end}}{{end}}{{end}}' ./... | sort -u)
			grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$gomod" |
				awk -v v="v0.${K8S_VERSION#v1.}" '{print "replace " $1 " => " $1 " " v}'
		} >>go.mod
		{
			printf '//go:build tools\n\npackage tools\n\nimport (\n'
			local c
			for c in kube-apiserver kubelet kube-controller-manager kube-scheduler kube-proxy; do
				printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$c"
			done
			printf '\t_ "go.etcd.io/etcd/server/v3"\n)\n'
		} >tools.go
		cat >coredns/main.go <<'GO'
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/ready"
)

func init() { dnsserver.Directives = []string{"bind", "errors", "ready", "kubernetes"} }

func main() { coremain.Run() }
GO
		go mod tidy >/dev/null 2>&1 || go mod tidy
	)
}

# k8s_build DIR OUT PKG... builds commands of the module in DIR into the
# directory OUT, in one go build so the packages they share compile once.
k8s_build() {
	local dir="$1" out="$2"
	shift 2
	mkdir -p "$out"
	(
		cd "$dir"
		go build -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)" \
			-o "$out/" "$@"
	)
}
