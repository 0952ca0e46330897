#!/usr/bin/env bash
# Build the status-router image without a container daemon: stage a root file system (the
# binary, the glibc libraries `ldd` names, passwd/group for UID 65532, nsswitch.conf), then
# `buildah bud` the Containerfile on it (vfs storage, chroot isolation: works as root in a
# container without overlayfs or user namespaces) and write an OCI archive.
#
# usage: scripts/image.sh BINARY OUT_DIR [--stage-only]
#   OUT_DIR/context/     the build context (rootfs/), usable by docker/podman build too
#   OUT_DIR/status-router.oci.tar   the OCI archive (`ctr images import` takes it)
#   OUT_DIR/inputs.sha256           what the archive was built from: an unchanged input set
#                                   reuses the archive without running buildah.
# env: VERSION, REVISION, SOURCE (OCI labels), IMAGE_NAME (default localhost/status-router:dev),
#      STRIP_DEBUG=1 (strip the binary's debug info in the image)
# Installs buildah with apt-get when it is missing (root or passwordless sudo).
set -euo pipefail

BINARY=${1:?usage: scripts/image.sh BINARY OUT_DIR [--stage-only]}
OUT=${2:?usage: scripts/image.sh BINARY OUT_DIR [--stage-only]}
STAGE_ONLY=${3:-}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
IMAGE_NAME=${IMAGE_NAME:-localhost/status-router:dev}
VERSION=${VERSION:-dev}
REVISION=${REVISION:-unknown}
SOURCE=${SOURCE:-unknown}
log() { printf 'image: %s\n' "$*" >&2; }

[[ -x "$BINARY" ]] || { log "no executable binary at $BINARY (build it: cargo build --release -p status-router)"; exit 1; }

CTX="$OUT/context"
ROOTFS="$CTX/rootfs"
rm -rf "$CTX"
mkdir -p "$ROOTFS/usr/local/bin" "$ROOTFS/etc" "$ROOTFS/home/nonroot" "$ROOTFS/var/cache" "$ROOTFS/tmp"
chmod 1777 "$ROOTFS/tmp"
cp "$BINARY" "$ROOTFS/usr/local/bin/status-router"
# STRIP_DEBUG=1 (dev-profile binaries): drop the debug info, hundreds of MB the image need not carry.
[[ -n "${STRIP_DEBUG:-}" ]] && objcopy --strip-debug "$ROOTFS/usr/local/bin/status-router"

# Every shared library the binary loads, at the path the dynamic loader looks for it
# (symlinks resolved: the image gets the files themselves).
libs=$(ldd "$BINARY" | awk '/=>/ && $3 ~ /^\// { print $3 } /^[[:space:]]*\/[^ ]*ld-linux/ { print $1 }' | sort -u)
[[ -n "$libs" ]] || { log "ldd found no libraries in $BINARY; is it static? This script expects a dynamic glibc binary"; exit 1; }
for lib in $libs; do
  mkdir -p "$ROOTFS$(dirname "$lib")"
  cp -L "$lib" "$ROOTFS$lib"
done
# glibc >= 2.34 has the files and dns NSS back ends inside libc.so.6; say which to use.
cat >"$ROOTFS/etc/nsswitch.conf" <<'NSS'
passwd: files
group:  files
hosts:  files dns
NSS
cat >"$ROOTFS/etc/passwd" <<'PW'
root:x:0:0:root:/root:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
PW
cat >"$ROOTFS/etc/group" <<'GR'
root:x:0:
nonroot:x:65532:
GR
chown -R 65532:65532 "$ROOTFS/home/nonroot" "$ROOTFS/var/cache"
[[ -e "$ROOTFS/bin/sh" || -e "$ROOTFS/usr/bin/sh" ]] && { log "a shell slipped into the rootfs"; exit 1; }
log "staged $(find "$ROOTFS" -type f | wc -l) files, $(du -sh "$ROOTFS" | cut -f1), in $CTX"

if [[ "$STAGE_ONLY" == --stage-only ]]; then
  log "stage only: docker build -f $ROOT/Containerfile -t status-router:dev $CTX"
  exit 0
fi

ARCHIVE="$OUT/status-router.oci.tar"
inputs=$( (cd "$CTX" && find . -type f -print0 | sort -z | xargs -0 sha256sum; sha256sum "$ROOT/Containerfile" | cut -d' ' -f1; echo "$IMAGE_NAME $VERSION $REVISION $SOURCE") | sha256sum | cut -d' ' -f1)
if [[ -s "$ARCHIVE" && -f "$OUT/inputs.sha256" && "$(cat "$OUT/inputs.sha256")" == "$inputs" ]]; then
  log "inputs unchanged: reusing $ARCHIVE"
  exit 0
fi

if ! command -v buildah >/dev/null; then
  log "buildah is missing: installing it with apt-get"
  SUDO=()
  [[ $(id -u) -eq 0 ]] || SUDO=(sudo -n)
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -q --no-install-recommends buildah >&2 ||
    { "${SUDO[@]}" apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -q --no-install-recommends buildah >&2; }
fi

# A private buildah store under OUT: nothing outside the target dir is touched.
STORE="$OUT/buildah"
mkdir -p "$STORE/root" "$STORE/runroot"
BUILDAH=(buildah --storage-driver vfs --root "$STORE/root" --runroot "$STORE/runroot")
export BUILDAH_ISOLATION=chroot
"${BUILDAH[@]}" bud --isolation chroot --layers=false -f "$ROOT/Containerfile" \
  --build-arg "VERSION=$VERSION" --build-arg "REVISION=$REVISION" --build-arg "SOURCE=$SOURCE" \
  -t "$IMAGE_NAME" "$CTX" >&2
rm -f "$ARCHIVE.tmp"
"${BUILDAH[@]}" push "$IMAGE_NAME" "oci-archive:$ARCHIVE.tmp:$IMAGE_NAME" >&2
# The store holds a copy of every build: keep only the archive.
"${BUILDAH[@]}" rmi --all -f >/dev/null 2>&1 || true
mv "$ARCHIVE.tmp" "$ARCHIVE"
echo "$inputs" >"$OUT/inputs.sha256"
log "wrote $ARCHIVE ($(du -h "$ARCHIVE" | cut -f1)) as $IMAGE_NAME"
