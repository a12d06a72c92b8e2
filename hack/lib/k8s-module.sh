# Sourced by hack/setup-envtest.sh and hack/setup-cluster.sh: a throwaway Go
# module that builds Kubernetes commands from the module proxy (no prebuilt
# binary downloads are reachable here). kubernetes' own go.mod replaces each
# staging module (k8s.io/api => ./staging/...) with a path a module download
# does not carry, so the throwaway module points each at its published v0.Y.Z.
# Every build uses the same flags, so the commands share one compile cache.

# k8s_module DIR VERSION PKG... makes DIR a module whose tools.go imports PKGs.
k8s_module() {
	local dir="$1" version="$2"
	shift 2
	mkdir -p "$dir"
	(
		cd "$dir"
		go mod init aerostat.local/k8s-build >/dev/null 2>&1
		local gomod
		gomod="$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
		{
			echo "require k8s.io/kubernetes $version"
			grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$gomod" |
				awk -v v="v0.${version#v1.}" '{print "replace " $1 " => " $1 " " v}'
		} >>go.mod
		{
			printf '//go:build tools\n\npackage tools\n\nimport (\n'
			local p
			for p in "$@"; do printf '\t_ "%s"\n' "$p"; done
			printf ')\n'
		} >tools.go
		go mod tidy >/dev/null 2>&1 || go mod tidy
	)
}

# k8s_build DIR VERSION PKG OUT builds one command of the module in DIR.
k8s_build() {
	local dir="$1" version="$2" pkg="$3" out="$4"
	(
		cd "$dir"
		go build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$version" | cut -d. -f2)" \
			-o "$out" "$pkg"
	)
}
