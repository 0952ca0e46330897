#!/usr/bin/env bash
# Build (once) and cache the binaries of a real, local Kubernetes 1.32: kube-apiserver and etcd
# for the `testenv` crate's integration tests, and the node's kubelet, kube-controller-manager
# and kube-scheduler for the real-node test of running in a cluster (scripts/node.sh).
#
# Why 1.32: KubeStellar v0.30.0 is built against it (k8s.io/* v0.32.13), and its
# controller-manager judges status-router in the tests (scripts/build-kubestellar.sh).
# Why build: no package registry ships kube-apiserver. It is built from the k8s.io/kubernetes Go
# module through go/kubernetes/go.mod, which pins it and repeats the replace lines its staging
# modules need; etcd (the version k8s.io/kubernetes requires) from go.etcd.io/etcd/server/v3.
# `go build` verifies every module against go/kubernetes/go.sum.
#
# Cache: ${STATUS_ROUTER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/status-router}/control-plane/
#        k8s-1.32.13-etcd-3.5.16/bin/{kube-apiserver,etcd,kubelet,kube-controller-manager,
#        kube-scheduler}  (outside the clone, keyed by versions). Go's own module and build
# caches ($GOMODCACHE, $GOCACHE: `go env`) are outside the clone as well; a re-run with a valid
# cache exits at once without touching the network.
# Cold run: about 7 minutes on 2 cores (kube-apiserver alone about 5), 1.5 GB of Go caches.
# Needs Go 1.24 or newer (the `tool` directive); the machines have Go 1.26.
set -euo pipefail

K8S_VERSION=1.32.13
ETCD_VERSION=3.5.16
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MODULE="$ROOT/go/kubernetes"
CACHE_ROOT="${STATUS_ROUTER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/status-router}"
CP_DIR="$CACHE_ROOT/control-plane"
KEY="k8s-${K8S_VERSION}-etcd-${ETCD_VERSION}"
FINAL_DIR="$CP_DIR/$KEY"
BIN_DIR="$FINAL_DIR/bin"
NODE_BINARIES=(kubelet kube-controller-manager kube-scheduler)

log() { printf '%s\n' "$*" >&2; }

# Whether binary $1's `--version` output has the line $2. The output is read whole first: with
# pipefail, `etcd --version | grep -q` fails whenever grep exits before etcd's last line and
# etcd dies of SIGPIPE.
reports() {
  local out
  out=$("$1" --version 2>/dev/null) || return 1
  grep -qxF -- "$2" <<<"$out"
}

binaries_ok() {
  local dir=$1 b
  reports "$dir/kube-apiserver" "Kubernetes v$K8S_VERSION" &&
    reports "$dir/etcd" "etcd Version: $ETCD_VERSION" || return 1
  for b in "${NODE_BINARIES[@]}"; do
    reports "$dir/$b" "Kubernetes v$K8S_VERSION" || return 1
  done
}

if binaries_ok "$BIN_DIR"; then
  echo "control plane binaries: reusing cache at $BIN_DIR"
  exit 0
fi

mkdir -p "$CP_DIR"
# One build at a time (e.g. two test runs starting together); the winner's result is reused.
exec 9>"$CP_DIR/.build-$KEY.lock"
if ! flock -n 9; then
  log "another build of the control plane is running; waiting for it..."
  flock 9
fi
if binaries_ok "$BIN_DIR"; then
  echo "control plane binaries: reusing cache at $BIN_DIR (built by a concurrent run)"
  exit 0
fi

command -v go >/dev/null || {
  log "ERROR: no \`go\` on PATH. Kubernetes $K8S_VERSION is built from its Go module: install"
  log "Go 1.24 or newer (the project's machines have Go 1.26 in /usr/local/go/bin)."
  exit 1
}
log "control plane binaries: not cached at $BIN_DIR; building Kubernetes $K8S_VERSION and"
log "etcd $ETCD_VERSION from their Go modules ($(go version)). Expect about 7 minutes on 2 cores."

# The version the binaries report (`--version`, the node's kubeletVersion): what `make` stamps.
minor=$(cut -d. -f2 <<<"$K8S_VERSION")
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

STAGE="$CP_DIR/.staging-$KEY-$$"
rm -rf "$STAGE"
mkdir -p "$STAGE/bin"
trap 'rm -rf "$STAGE"' EXIT
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=readonly
build() { # $1 = output name, $2 = package, rest = extra flags
  local out=$1 pkg=$2 t0=$SECONDS
  shift 2
  log "==> go build $pkg ($(date +%H:%M:%S))"
  (cd "$MODULE" && go build -trimpath "$@" -o "$STAGE/bin/$out" "$pkg")
  log "    $out built in $((SECONDS - t0))s"
}
# providerless: no in-tree cloud providers (the kubelet would otherwise carry them all).
for b in kube-apiserver "${NODE_BINARIES[@]}"; do
  build "$b" "k8s.io/kubernetes/cmd/$b" -tags=providerless -ldflags="$ldflags"
done
build etcd go.etcd.io/etcd/server/v3 -ldflags="-s -w"

"$STAGE/bin/kube-apiserver" --version
"$STAGE/bin/etcd" --version | sed -n 1p
binaries_ok "$STAGE/bin" || {
  log "ERROR: the built binaries do not report Kubernetes v$K8S_VERSION / etcd $ETCD_VERSION:"
  log "go/kubernetes/go.mod and this script disagree on the versions."
  exit 1
}
# Replace any half-populated previous cache dir, then move the staged dir in one rename.
rm -rf "$FINAL_DIR"
mv "$STAGE" "$FINAL_DIR"
log "done in ${SECONDS}s"
echo "control plane binaries: built and cached at $BIN_DIR"
