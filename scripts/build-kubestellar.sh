#!/usr/bin/env bash
# Build (once) and cache KubeStellar's controller-manager (its binding and status controllers),
# the judge of the tests that compare status-router with KubeStellar's own status controller.
#
# Built from the github.com/kubestellar/kubestellar Go module at the version go/kubestellar/go.mod
# pins (with the replace lines KubeStellar's own go.mod has, which is why `go install ...@v0.30.0`
# refuses it). `go build` verifies every module against go/kubestellar/go.sum.
#
# Cache: ${STATUS_ROUTER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/status-router}/kubestellar/
#        v0.30.0/bin/controller-manager (outside the clone, keyed by version).
# Cold run: about 5 minutes on 2 cores, less after scripts/build-control-plane.sh (shared
# Kubernetes packages in Go's build cache).
set -euo pipefail

KUBESTELLAR_VERSION=v0.30.0
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MODULE="$ROOT/go/kubestellar"
CACHE_ROOT="${STATUS_ROUTER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/status-router}"
DIR="$CACHE_ROOT/kubestellar/$KUBESTELLAR_VERSION"
BIN="$DIR/bin/controller-manager"

log() { printf '%s\n' "$*" >&2; }

# The binary has no --version: the cache is valid while it was built from today's go.sum.
binary_ok() { [[ -x "$BIN" && -f "$DIR/go.sum" ]] && cmp -s "$DIR/go.sum" "$MODULE/go.sum"; }

if binary_ok; then
  echo "KubeStellar controller-manager: reusing cache at $BIN"
  exit 0
fi
mkdir -p "$DIR"
exec 9>"$DIR/.build.lock"
if ! flock -n 9; then
  log "another build of KubeStellar's controller-manager is running; waiting for it..."
  flock 9
fi
if binary_ok; then
  echo "KubeStellar controller-manager: reusing cache at $BIN (built by a concurrent run)"
  exit 0
fi
command -v go >/dev/null || {
  log "ERROR: no \`go\` on PATH. KubeStellar $KUBESTELLAR_VERSION is built from its Go module:"
  log "install Go 1.25 or newer (the project's machines have Go 1.26 in /usr/local/go/bin)."
  exit 1
}
grep -q "github.com/kubestellar/kubestellar $KUBESTELLAR_VERSION" "$MODULE/go.mod" || {
  log "ERROR: go/kubestellar/go.mod does not pin KubeStellar $KUBESTELLAR_VERSION: update this script"
  exit 1
}
log "KubeStellar controller-manager: not cached at $BIN; building it from its Go module"
log "($(go version)). Expect about 5 minutes on 2 cores."
t0=$SECONDS
mkdir -p "$DIR/bin"
(cd "$MODULE" && CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=readonly \
  go build -trimpath -ldflags="-s -w" -o "$BIN.tmp" \
  github.com/kubestellar/kubestellar/cmd/controller-manager)
help=$("$BIN.tmp" -h 2>&1 || true)
grep -q -- "--controllers" <<<"$help" || {
  log "ERROR: the built controller-manager does not answer -h with its flags"
  exit 1
}
mv "$BIN.tmp" "$BIN"
cp "$MODULE/go.sum" "$DIR/go.sum"
log "built in $((SECONDS - t0))s"
echo "KubeStellar controller-manager: built and cached at $BIN"
