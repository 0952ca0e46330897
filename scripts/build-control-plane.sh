#!/usr/bin/env bash
# Build (once) and cache the binaries of a real, local Kubernetes control plane:
# kube-apiserver 1.20.2 and etcd 3.4.23, for the `testenv` crate's integration tests, and the
# node's kubelet, kube-controller-manager and kube-scheduler (same source, same `make`, so the
# compile is shared) for the real-node test of running in a cluster (scripts/node.sh).
#
# Why build: no package registry ships kube-apiserver. Debian bookworm's `kubernetes` source
# package (1.20.2, Go dependencies vendored) builds it with Debian's Go 1.19 after three small
# patches (the source was written for Go 1.15):
#   * vendored modern-go/reflect2 1.0.1 crashes on Go >= 1.18 at the first JSON map encoding:
#     replaced with Debian's reflect2 1.0.2 and json-iterator 1.1.12 sources;
#   * go-openapi / kube-openapi `validate/type.go` treats every empty string as `null` under
#     Go 1.19 (reflect.DeepEqual of zero values): the null check becomes `data == nil` alone.
# etcd comes ready-built from Debian's `etcd-server` package.
#
# Cache: ${STATUS_ROUTER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/status-router}/control-plane/
#        k8s-1.20.2-etcd-3.4.23/bin/{kube-apiserver,etcd,kubelet,kube-controller-manager,
#        kube-scheduler}  (outside the clone, keyed by versions).
# A second run with a valid cache exits at once without touching apt or the network.
# Cold run: ~12-15 minutes on 2 cores, ~3 GB of free disk while building (~300 MB kept).
# Needs root (or sudo) only to apt-get install the build tools (golang-1.19-go, rsync, ...).
set -euo pipefail

K8S_VERSION=1.20.2
ETCD_VERSION=3.4.23
CACHE_ROOT="${STATUS_ROUTER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/status-router}"
CP_DIR="$CACHE_ROOT/control-plane"
KEY="k8s-${K8S_VERSION}-etcd-${ETCD_VERSION}"
FINAL_DIR="$CP_DIR/$KEY"
BIN_DIR="$FINAL_DIR/bin"
WORK="$CP_DIR/build-work-$KEY"
GO_BIN_DIR=/usr/lib/go-1.19/bin
STEPS=6
STEP="preparation"
STEP_HINT="Re-run the script; see the output above."

log() { printf '%s\n' "$*" >&2; }
step() {
  STEP="[$1/$STEPS] $2"
  STEP_HINT="$3"
  log ""
  log "==> $STEP ($(date +%H:%M:%S), $((SECONDS))s elapsed)"
}
on_err() {
  local rc=$?
  log ""
  log "ERROR: building the control plane failed at step: $STEP (exit code $rc)."
  log "Hint: $STEP_HINT"
  log "Downloaded sources are kept in $WORK so a re-run resumes faster;"
  log "delete that directory to start from scratch. The cache at $FINAL_DIR was not touched."
  exit "$rc"
}
trap on_err ERR

NODE_BINARIES=(kubelet kube-controller-manager kube-scheduler)
binaries_ok() {
  local dir=$1 b
  [[ -x "$dir/kube-apiserver" && -x "$dir/etcd" ]] &&
    "$dir/kube-apiserver" --version >/dev/null 2>&1 &&
    "$dir/etcd" --version >/dev/null 2>&1 || return 1
  for b in "${NODE_BINARIES[@]}"; do
    "$dir/$b" --version >/dev/null 2>&1 || return 1
  done
}

if binaries_ok "$BIN_DIR"; then
  echo "control plane binaries: reusing cache at $BIN_DIR"
  exit 0
fi

mkdir -p "$CP_DIR"
# One build at a time (e.g. two test runs starting together); the winner's result is reused.
if command -v flock >/dev/null; then
  exec 9>"$CP_DIR/.build-$KEY.lock"
  if ! flock -n 9; then
    log "another build of the control plane is running; waiting for it..."
    flock 9
  fi
  if binaries_ok "$BIN_DIR"; then
    echo "control plane binaries: reusing cache at $BIN_DIR (built by a concurrent run)"
    exit 0
  fi
fi

log "control plane binaries: not cached at $BIN_DIR, building them now."
log "Expect ~12-15 minutes on 2 cores and ~3 GB of free disk under $CP_DIR during the build."
log "Work dir (kept on failure so a retry reuses downloads): $WORK"
mkdir -p "$WORK"
export DEBIAN_FRONTEND=noninteractive

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then SUDO=(sudo -n); fi
fi

# --------------------------------------------------------------------------------------------
step 1 "install build tools (golang-1.19-go, rsync, make, dpkg-dev)" \
  "Check that apt-get works (network to the Debian mirror, root or passwordless sudo): \
apt-get update && apt-get install -y golang-1.19-go rsync make dpkg-dev"
need=()
[[ -x "$GO_BIN_DIR/go" ]] || need+=(golang-1.19-go)
command -v rsync >/dev/null || need+=(rsync)
command -v make >/dev/null || need+=(make)
command -v dpkg-source >/dev/null || need+=(dpkg-dev)
# `apt-get download` below needs current binary package lists even if nothing is missing.
if [[ $(id -u) -eq 0 || ${#SUDO[@]} -gt 0 ]]; then
  "${SUDO[@]}" apt-get update -q
elif ((${#need[@]})); then
  log "missing ${need[*]} and not root (no passwordless sudo): install them first"
  false
fi
if ((${#need[@]})); then
  log "installing: ${need[*]}"
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${need[@]}"
else
  log "all build tools already installed"
fi

# --------------------------------------------------------------------------------------------
step 2 "download sources: kubernetes $K8S_VERSION (source package) and helper .debs" \
  "The Debian mirror must provide bookworm's 'kubernetes' source package and the \
etcd-server, golang-github-modern-go-reflect2-dev and golang-github-json-iterator-go-dev packages."
APT_TMP="$WORK/apt"
rm -rf "$APT_TMP"
mkdir -p "$APT_TMP/sources" "$APT_TMP/lists/partial"
# Derive deb-src entries from the machine's own apt configuration (no host name is written
# into the repository): deb822 `Types: deb` -> `Types: deb-src`, one-line `deb ` -> `deb-src `.
shopt -s nullglob
for f in /etc/apt/sources.list.d/*.sources; do
  sed -E 's/^Types:.*/Types: deb-src/' "$f" >"$APT_TMP/sources/$(basename "$f")"
done
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
  [[ -f "$f" ]] || continue
  { grep -E '^[[:space:]]*deb[[:space:]]' "$f" || true; } |
    sed -E 's/^[[:space:]]*deb[[:space:]]/deb-src /' >"$APT_TMP/sources/src-$(basename "$f")"
done
shopt -u nullglob
APT_SRC_OPTS=(
  -o Dir::Etc::SourceList=/dev/null
  -o "Dir::Etc::SourceParts=$APT_TMP/sources"
  -o "Dir::State::Lists=$APT_TMP/lists"
  -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=
  -o APT::Sandbox::User=root
)
DL="$WORK/download"
mkdir -p "$DL"
# Debian versions it `1.20.5+really1.20.2-...`: the upstream source is 1.20.2.
if compgen -G "$DL/kubernetes_*.dsc" >/dev/null; then
  log "kubernetes source already downloaded"
else
  apt-get "${APT_SRC_OPTS[@]}" update -q
  (cd "$DL" && apt-get "${APT_SRC_OPTS[@]}" source --download-only kubernetes)
fi
K8S_DSC=$(compgen -G "$DL/kubernetes_*.dsc" | head -n1)
if [[ "$K8S_DSC" != *"${K8S_VERSION}-"* ]]; then
  STEP_HINT="The mirror's kubernetes source is not upstream $K8S_VERSION ($K8S_DSC). \
Update K8S_VERSION in this script and in tests/testenv (the cache key)."
  false
fi
for pkg in etcd-server golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev; do
  if compgen -G "$DL/${pkg}_*.deb" >/dev/null; then
    log "$pkg already downloaded"
  else
    (cd "$DL" && apt-get -o APT::Sandbox::User=root download "$pkg")
  fi
done
etcd_deb=$(compgen -G "$DL/etcd-server_${ETCD_VERSION}*.deb" | head -n1 || true)
if [[ -z "$etcd_deb" ]]; then
  STEP_HINT="The mirror's etcd-server is not version $ETCD_VERSION ($(ls "$DL"/etcd-server_*.deb)). \
Update ETCD_VERSION in this script and in tests/testenv (the cache key)."
  false
fi

# --------------------------------------------------------------------------------------------
step 3 "extract and patch the kubernetes source for Go 1.19" \
  "Delete $WORK and re-run; if a patch no longer applies, the source package changed."
SRC="$WORK/kubernetes-$K8S_VERSION"
rm -rf "$SRC" "$WORK/debs"
dpkg-source --no-check -x "$K8S_DSC" "$SRC" >/dev/null
for deb in "$DL"/*.deb; do dpkg -x "$deb" "$WORK/debs"; done
replace_vendored() { # $1 = import path
  local from="$WORK/debs/usr/share/gocode/src/$1" to="$SRC/vendor/$1"
  [[ -d "$from" && -d "$to" ]] || { log "missing $from or $to"; return 1; }
  find "$to" -maxdepth 1 -type f -name '*.go' -delete
  find "$from" -maxdepth 1 -type f -name '*.go' ! -name '*_test.go' -exec cp {} "$to/" \;
  log "replaced vendor/$1 with Debian's $(basename "$(dirname "$from")")/$(basename "$from") sources"
}
replace_vendored github.com/modern-go/reflect2
replace_vendored github.com/json-iterator/go
for f in vendor/github.com/go-openapi/validate/type.go \
  vendor/k8s.io/kube-openapi/pkg/validation/validate/type.go; do
  [[ -f "$SRC/$f" ]] || { log "not present (skipped): $f"; continue; }
  # `if data == nil || reflect.DeepEqual(reflect.Zero(reflect.TypeOf(data)), reflect.ValueOf(data)) {`
  # becomes `if data == nil {` (`reflect` stays used elsewhere in the file).
  sed -i -E 's/if data == nil \|\| reflect\.DeepEqual\(reflect\.Zero\(reflect\.TypeOf\(data\)\), reflect\.ValueOf\(data\)\) \{/if data == nil {/' "$SRC/$f"
  if grep -q 'reflect.DeepEqual(reflect.Zero' "$SRC/$f" || ! grep -q 'if data == nil {' "$SRC/$f"; then
    log "patch did not apply to $f"
    false
  fi
  log "patched null check in $f"
done

# --------------------------------------------------------------------------------------------
step 4 "build kube-apiserver and the node binaries with Go 1.19 (the long step: ~10-12 minutes on 2 cores)" \
  "Look at the Go compiler errors above. Go must be $GO_BIN_DIR/go (golang-1.19-go)."
export PATH="$GO_BIN_DIR:$PATH"
# providerless: no in-tree cloud providers (the kubelet would otherwise carry them all).
export GOCACHE="$WORK/gocache" GOFLAGS="-mod=vendor -tags=providerless" CGO_ENABLED=0 GOTOOLCHAIN=local
export KUBE_GIT_VERSION="v${K8S_VERSION}" KUBE_GIT_TREE_STATE=clean KUBE_GIT_MAJOR=1 KUBE_GIT_MINOR=20
log "go: $(go version)"
(cd "$SRC" && make WHAT="cmd/kube-apiserver ${NODE_BINARIES[*]/#/cmd/}")
built() { # $1 = binary name -> its path under _output
  local path
  path=$(find "$SRC/_output" -type f -name "$1" -perm -u+x | head -n1)
  [[ -n "$path" ]] || { log "$1 not found under $SRC/_output"; return 1; }
  printf '%s\n' "$path"
}
apiserver=$(built kube-apiserver)

# --------------------------------------------------------------------------------------------
step 5 "extract etcd $ETCD_VERSION from Debian's etcd-server package" \
  "Check $etcd_deb."
etcd_bin="$WORK/debs/usr/bin/etcd"
[[ -x "$etcd_bin" ]] || { log "etcd not found in $etcd_deb"; false; }

# --------------------------------------------------------------------------------------------
step 6 "verify and install the binaries into the cache" \
  "Check that $CP_DIR is writable."
STAGE="$CP_DIR/.staging-$KEY-$$"
rm -rf "$STAGE"
mkdir -p "$STAGE/bin"
cp "$apiserver" "$STAGE/bin/kube-apiserver"
for b in "${NODE_BINARIES[@]}"; do cp "$(built "$b")" "$STAGE/bin/$b"; done
cp "$etcd_bin" "$STAGE/bin/etcd"
"$STAGE/bin/kube-apiserver" --version
"$STAGE/bin/etcd" --version | head -n1
binaries_ok "$STAGE/bin"
# Replace any half-populated previous cache dir, then move the staged dir in one rename.
rm -rf "$FINAL_DIR"
mv "$STAGE" "$FINAL_DIR"
log "cleaning up the build work dir $WORK (can take a minute: the Go build cache has many files)"
rm -rf "$WORK"
trap - ERR
log ""
log "done in $((SECONDS))s"
echo "control plane binaries: built and cached at $BIN_DIR"
