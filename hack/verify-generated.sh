#!/usr/bin/env bash
# Regenerates deepcopy, CRDs, RBAC and the chart copies and fails if the result
# differs from the tree, without touching uncommitted work: the tree is
# snapshotted first and restored if anything differs.
set -euo pipefail
cd "$(dirname "$0")/.."
paths=(api config charts)
snap="$(mktemp -d)"
trap 'rm -rf "$snap"' EXIT
for p in "${paths[@]}"; do [[ -e $p ]] && cp -a "$p" "$snap/"; done
make -s generate manifests >/dev/null
stale=0
for p in "${paths[@]}"; do
	[[ -e $p ]] || continue
	if ! diff -r -q "$snap/$p" "$p" >/dev/null; then
		diff -r -u "$snap/$p" "$p" | head -40 >&2 || true
		stale=1
	fi
done
if ((stale)); then
	for p in "${paths[@]}"; do [[ -e $snap/$p ]] && rm -rf "$p" && cp -a "$snap/$p" "$p"; done
	echo "verify: generated files are stale; run 'make generate manifests' and commit the result" >&2
	exit 1
fi
echo "verify: generated files are up to date"
