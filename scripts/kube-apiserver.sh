#!/usr/bin/env bash
# kube-apiserver.sh builds a real kube-apiserver for the test harness and caches it.
#
# The binary is built from the Go module proxy in a scratch module outside the
# repository (never vendored), with a replace for every Kubernetes staging module,
# and written to ${XDG_CACHE_HOME:-$HOME/.cache}/drguard/bin/kube-apiserver.
# When that binary already reports the wanted version the build is skipped.
# Cold: about 6 minutes on 2 cores and ~3 GB of memory; warm: seconds.
#
# Environment:
#   KUBE_VERSION   Kubernetes version to build (default v1.37.2).
#   DRGUARD_CACHE  cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/drguard).
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-v1.37.2}"
STAGING_VERSION="v0${KUBE_VERSION#v1}" # v1.37.2 -> v0.37.2
CACHE="${DRGUARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/drguard}"
BIN_DIR="$CACHE/bin"
OUT="$BIN_DIR/kube-apiserver"
WORK="$CACHE/kube-apiserver-build"

built() { [[ -x "$OUT" ]] && "$OUT" --version 2>/dev/null | grep -qx "Kubernetes $KUBE_VERSION"; }
if built; then
	echo "kube-apiserver $KUBE_VERSION already built: $OUT"
	exit 0
fi

command -v go >/dev/null || { echo "kube-apiserver.sh: go is not on PATH" >&2; exit 1; }
mkdir -p "$BIN_DIR" "$WORK"
# One build at a time; a concurrent run waits and then finds the binary.
exec 9>"$CACHE/kube-apiserver.lock"
flock 9
if built; then
	echo "kube-apiserver $KUBE_VERSION already built: $OUT"
	exit 0
fi
start=$(date +%s)
cd "$WORK"

# Download k8s.io/kubernetes (outside any module) to read its own replace block,
# which lists every staging module.
modjson=$(cd / && GOFLAGS=-mod=mod GO111MODULE=on go mod download -json "k8s.io/kubernetes@$KUBE_VERSION")
gomod=$(printf '%s\n' "$modjson" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
[[ -f "$gomod" ]] || { echo "kube-apiserver.sh: cannot find go.mod of k8s.io/kubernetes: $modjson" >&2; exit 1; }
staging=$(grep -oE '^[[:space:]]*k8s\.io/[A-Za-z0-9._/-]+ => \./staging/src/' "$gomod" |
	awk '{print $1}' | grep -vE '^k8s\.io/(sample-cli-plugin|sample-controller)$' | sort -u)
[[ -n "$staging" ]] || { echo "kube-apiserver.sh: no staging modules found in $gomod" >&2; exit 1; }

goversion=$(go env GOVERSION | sed -E 's/^go([0-9]+\.[0-9]+(\.[0-9]+)?).*/\1/')
{
	echo "module drguard.local/kube-apiserver-build"
	echo
	echo "go $goversion"
	echo
	echo "require k8s.io/kubernetes $KUBE_VERSION"
	echo
	echo "replace ("
	for m in $staging; do echo "	$m => $m $STAGING_VERSION"; done
	echo ")"
} >go.mod
cat >tools.go <<'GO'
//go:build tools

// Package tools pins kube-apiserver so that go mod tidy keeps its dependencies.
package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
GO
rm -f go.sum
GOFLAGS=-mod=mod go mod tidy

minor=$(echo "$KUBE_VERSION" | cut -d. -f2)
ldflags="-s -w"
ldflags+=" -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION"
ldflags+=" -X k8s.io/component-base/version.gitMajor=1"
ldflags+=" -X k8s.io/component-base/version.gitMinor=$minor"
ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
ldflags+=" -X k8s.io/component-base/version.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
go build -trimpath -ldflags "$ldflags" -o "$OUT.tmp" k8s.io/kubernetes/cmd/kube-apiserver
mv "$OUT.tmp" "$OUT"
"$OUT" --version
echo "kube-apiserver $KUBE_VERSION built in $(($(date +%s) - start))s: $OUT"
