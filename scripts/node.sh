#!/usr/bin/env bash
# A real single-node Kubernetes 1.32 for the real-node test, inside a network namespace that has
# only `lo`: etcd, the WDS kube-apiserver (the hosting cluster), kube-controller-manager,
# kube-scheduler, containerd + runc (Debian), the kubelet; and a separate ITS kube-apiserver.
# Then it runs a command inside that network namespace, and undoes everything.
#
#   scripts/node.sh IMAGE_ARCHIVE -- COMMAND [ARGS...]
#
# IMAGE_ARCHIVE (the status-router OCI archive of `cargo xtask image`) is imported into
# containerd. COMMAND runs in the network namespace with
#   NODE_WDS_KUBECONFIG   admin kubeconfig of the hosting cluster (the WDS), https://127.0.0.1:6443
#   NODE_ITS_KUBECONFIG   admin kubeconfig of the ITS, https://127.0.0.1:6444
#   NODE_ITS_SECRET_KUBECONFIG  the ITS as the pods see it: https://its.status-router.test:6444,
#                         token of user system:serviceaccount:kubestellar:status-router
#   NODE_CONTAINERD_ADDRESS, NODE_STATE_DIR, KUBECONFIG (= NODE_WDS_KUBECONFIG)
#   (and NODE_WORKSPACE, the checkout's root, which xtask sets and passes through)
# and the script exits with COMMAND's exit code.
#
# Why a network namespace: the 1.20 kubelet called the cloud metadata address 169.254.169.254 at
# start (its in-tree AWS credential provider); 1.32 no longer has that provider, but with only
# `lo` nothing the node starts can reach any address but loopback, whatever flag is forgotten or
# whatever a later version adds (AWS_EC2_METADATA_DISABLED=true stays on the kubelet too). It
# also makes the fixed ports below private to this run. The daemons enter the namespace with
# `nsenter --net` (not `ip netns exec`, which remounts /sys and so hides the cgroup hierarchies
# from kubelet and runc).
#
# Host side effects, all undone on exit (trap): sysctls the kubelet rewrites (saved, restored),
# the kubepods cgroups (removed), /var/log/pods and /var/log/containers entries (removed), mounts
# under the state dir (unmounted), the network namespace (deleted); every process started here is
# stopped by pid (containerd's shims are found by the state dir in their command line). One node
# per machine at a time (a lock).
#
# Needs root. Installs containerd, runc, containernetworking-plugins (and buildah, gcc for the pause
# image) with apt-get when missing. See ../shared/NODE.md for the facts behind each setting.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
IMAGE_ARCHIVE=${1:?usage: scripts/node.sh IMAGE_ARCHIVE -- COMMAND [ARGS...]}
shift
[[ "${1:-}" == -- ]] && shift
(($#)) || { echo "usage: scripts/node.sh IMAGE_ARCHIVE -- COMMAND [ARGS...]" >&2; exit 2; }

CACHE_ROOT="${STATUS_ROUTER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/status-router}"
BIN="${STATUS_ROUTER_CONTROL_PLANE_BIN:-$CACHE_ROOT/control-plane/k8s-1.32.13-etcd-3.5.16/bin}"
log() { printf 'node: [%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [[ $(id -u) -ne 0 ]]; then
  die "the real-node test needs root (network namespaces, containerd, runc, the kubelet's cgroups).
  Run it as root: sudo -E cargo xtask node-test"
fi
for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet; do
  [[ -x "$BIN/$b" ]] || die "missing $BIN/$b: run scripts/build-control-plane.sh (cargo xtask control-plane)"
done
[[ -s "$IMAGE_ARCHIVE" ]] || die "no image archive at $IMAGE_ARCHIVE: run cargo xtask image"

need=()
command -v containerd >/dev/null || need+=(containerd)
command -v runc >/dev/null || need+=(runc)
[[ -x /usr/lib/cni/loopback ]] || need+=(containernetworking-plugins)
command -v buildah >/dev/null || need+=(buildah)
command -v gcc >/dev/null || need+=(gcc libc6-dev)
command -v openssl >/dev/null || need+=(openssl)
if ((${#need[@]})); then
  log "installing ${need[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${need[@]}" >&2 ||
    { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends "${need[@]}" >&2; }
fi

# One node per machine: kubepods cgroups and /var/log/pods are machine-wide.
mkdir -p "$CACHE_ROOT/node"
exec 8>"$CACHE_ROOT/node/.lock"
flock -n 8 || { log "another real-node test holds $CACHE_ROOT/node/.lock; waiting"; flock 8; }
for d in /sys/fs/cgroup/*/kubepods; do
  [[ -e "$d" ]] && die "$d exists: another kubelet runs on this machine (or a run was killed); stop it or rmdir its kubepods cgroups"
done

# ---- the pause image (cached: it depends only on pause.c) -------------------------------------
PAUSE_DIR="$CACHE_ROOT/node/pause-$(sha256sum "$ROOT/scripts/node/pause.c" "$ROOT/scripts/node/pause.Containerfile" | sha256sum | cut -c1-12)"
PAUSE_ARCHIVE="$PAUSE_DIR/pause.oci.tar"
PAUSE_IMAGE=localhost/pause:status-router
if [[ ! -s "$PAUSE_ARCHIVE" ]]; then
  log "building the pause image"
  mkdir -p "$PAUSE_DIR/ctx"
  gcc -static -O2 -o "$PAUSE_DIR/ctx/pause" "$ROOT/scripts/node/pause.c"
  B=(buildah --storage-driver vfs --root "$PAUSE_DIR/store" --runroot "$PAUSE_DIR/run")
  "${B[@]}" bud --isolation chroot -f "$ROOT/scripts/node/pause.Containerfile" -t "$PAUSE_IMAGE" "$PAUSE_DIR/ctx" >&2
  "${B[@]}" push "$PAUSE_IMAGE" "oci-archive:$PAUSE_ARCHIVE.tmp:$PAUSE_IMAGE" >&2
  "${B[@]}" rmi --all -f >/dev/null 2>&1 || true
  mv "$PAUSE_ARCHIVE.tmp" "$PAUSE_ARCHIVE"
fi

# ---- state, and the cleanup of everything below --------------------------------------------------
STATE=$(mktemp -d /tmp/sr-node.XXXXXX)
NS="sr-node-$$"
PIDS=()
SYSCTLS=(vm.overcommit_memory kernel.panic kernel.panic_on_oops vm.panic_on_oom)
declare -A SAVED_SYSCTL=()
for s in "${SYSCTLS[@]}"; do SAVED_SYSCTL[$s]=$(sysctl -n "$s"); done
LOGDIRS_EXISTED=()
for d in /var/log/pods /var/log/containers; do
  [[ -d "$d" ]] && LOGDIRS_EXISTED+=("$d")
  mkdir -p "$d"
  ls -A "$d" | sort >"$STATE/$(basename "$d").before"
done

alive() { # not gone and not a zombie (PID 1 here reaps orphans late)
  [[ -r /proc/$1/stat ]] && [[ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ]]
}
stop_pid() { # SIGTERM, then SIGKILL after 10 s
  local pid=$1 i
  alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 100); do alive "$pid" || return 0; sleep 0.1; done # poll for the exit
  log "pid $pid ($(tr '\0' ' ' 2>/dev/null </proc/"$pid"/cmdline | cut -c1-60)) ignored SIGTERM for 10 s: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  set +e
  log "cleaning up (exit code $rc)"
  # The kubelet first (it would restart containers), then the pods' containers and shims.
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    [[ "${PIDNAMES[$i]}" == kubelet ]] && stop_pid "${PIDS[$i]}"
  done
  if [[ -S "$STATE/containerd/containerd.sock" ]]; then
    local c
    for c in $(ctr --address "$STATE/containerd/containerd.sock" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr --address "$STATE/containerd/containerd.sock" -n k8s.io tasks kill -s SIGKILL "$c" >/dev/null 2>&1
    done
  fi
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[$i]}"; done
  # containerd-shim-runc-v2 processes of this run, found by our state dir in their arguments;
  # their tasks are killed above, so SIGKILL loses nothing.
  local p
  for p in /proc/[0-9]*; do
    tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qF -- "$STATE/containerd" && kill -KILL "${p#/proc/}" 2>/dev/null
  done
  # Mounts under the state dir (secrets, emptyDirs, rootfs, shm), deepest first.
  awk -v s="$STATE" 'index($5, s) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null; done
  for s in "${SYSCTLS[@]}"; do sysctl -q -w "$s=${SAVED_SYSCTL[$s]}" >/dev/null; done
  # kubepods cgroups, deepest first (they did not exist before: checked above).
  find /sys/fs/cgroup/*/kubepods* -depth -type d -exec rmdir {} \; 2>/dev/null
  for d in /var/log/pods /var/log/containers; do
    comm -13 "$STATE/$(basename "$d").before" <(ls -A "$d" | sort) | while read -r e; do rm -rf "${d:?}/$e"; done
  done
  for d in /var/log/pods /var/log/containers; do
    [[ " ${LOGDIRS_EXISTED[*]} " == *" $d "* ]] || rmdir "$d" 2>/dev/null
  done
  ip netns del "$NS" 2>/dev/null
  if ((rc != 0)) && [[ -d "$STATE/logs" ]]; then
    mkdir -p "$CACHE_ROOT/node/last-failure"
    rm -rf "$CACHE_ROOT/node/last-failure/logs"
    cp -r "$STATE/logs" "$CACHE_ROOT/node/last-failure/logs"
    log "daemon logs of the failed run: $CACHE_ROOT/node/last-failure/logs"
  fi
  rm -rf "$STATE"
  local left
  left=$(ls -d /sys/fs/cgroup/*/kubepods* 2>/dev/null)
  [[ -z "$left" ]] || log "WARNING: cgroups left behind: $left"
  log "cleanup done"
  exit "$rc"
}
PIDNAMES=()
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$NS"
ip -n "$NS" link set lo up
[[ "$(ip -n "$NS" -o link | wc -l)" -eq 1 ]] || die "network namespace $NS has more than lo"
IN=(nsenter "--net=/run/netns/$NS" --)
mkdir -p "$STATE/logs"
start() { # NAME CMD...: a daemon in the network namespace
  local name=$1
  shift
  "${IN[@]}" "$@" >"$STATE/logs/$name.log" 2>&1 &
  PIDS+=("$!")
  PIDNAMES+=("$name")
}
wait_for() { # DESCRIPTION TIMEOUT_S CMD...: poll until CMD succeeds
  local what=$1 timeout=$2 t0=$SECONDS
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS - t0 < timeout)) || die "$what: not within ${timeout}s (logs in $STATE/logs)"
    local i
    for i in "${!PIDS[@]}"; do
      alive "${PIDS[$i]}" || die "${PIDNAMES[$i]} exited; last lines:
$(tail -20 "$STATE/logs/${PIDNAMES[$i]}.log")"
    done
    sleep 0.2 # poll
  done
  log "$what ($((SECONDS - t0))s)"
}

# ---- certificates and tokens ----------------------------------------------------------------
P="$STATE/pki"
mkdir -p "$P"
(
  cd "$P"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=sr-node-ca 2>/dev/null
  for s in wds its; do
    openssl req -newkey rsa:2048 -nodes -keyout $s.key -out $s.csr -subj "/CN=$s" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,IP:127.0.100.1,DNS:localhost,DNS:kubernetes.default.svc,DNS:its.status-router.test\n' >$s.ext
    openssl x509 -req -in $s.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile $s.ext -out $s.crt 2>/dev/null
  done
  openssl genrsa -out sa.key 2048 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
)
ADMIN_TOKEN=$(openssl rand -hex 16)
SR_ITS_TOKEN=$(openssl rand -hex 16)
printf '%s,admin,admin,system:masters\n' "$ADMIN_TOKEN" >"$P/wds-tokens.csv"
printf '%s,admin,admin,system:masters\n%s,system:serviceaccount:kubestellar:status-router,sr,system:serviceaccounts\n' \
  "$ADMIN_TOKEN" "$SR_ITS_TOKEN" >"$P/its-tokens.csv"
kubeconfig() { # SERVER TOKEN
  cat <<KC
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "$1", certificate-authority-data: $(base64 -w0 "$P/ca.crt")}}]
users: [{name: u, user: {token: "$2"}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
KC
}
kubeconfig https://127.0.0.1:6443 "$ADMIN_TOKEN" >"$STATE/wds.kubeconfig"
kubeconfig https://127.0.0.1:6444 "$ADMIN_TOKEN" >"$STATE/its.kubeconfig"
kubeconfig https://its.status-router.test:6444 "$SR_ITS_TOKEN" >"$STATE/its-secret.kubeconfig"

# ---- etcd and the two API servers -----------------------------------------------------------------
T0=$SECONDS
start etcd "$BIN/etcd" --data-dir "$STATE/etcd" --listen-client-urls http://127.0.0.1:2379 \
  --advertise-client-urls http://127.0.0.1:2379 --listen-peer-urls http://127.0.0.1:2380 \
  --initial-advertise-peer-urls http://127.0.0.1:2380 --initial-cluster default=http://127.0.0.1:2380 \
  --unsafe-no-fsync
apiserver() { # NAME PORT
  start "apiserver-$1" "$BIN/kube-apiserver" --etcd-servers http://127.0.0.1:2379 --etcd-prefix "/$1" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$2" \
    --tls-cert-file "$P/$1.crt" --tls-private-key-file "$P/$1.key" --client-ca-file "$P/ca.crt" \
    --token-auth-file "$P/$1-tokens.csv" --authorization-mode RBAC \
    --service-account-key-file "$P/sa.pub" --service-account-signing-key-file "$P/sa.key" \
    --service-account-issuer https://kubernetes.default.svc \
    --service-cluster-ip-range 127.0.100.0/24 --endpoint-reconciler-type none \
    --kubelet-preferred-address-types InternalIP --profiling=false
}
apiserver wds 6443
apiserver its 6444
ready() { "${IN[@]}" curl -sf --cacert "$P/ca.crt" -H "Authorization: Bearer $ADMIN_TOKEN" "https://127.0.0.1:$1/readyz"; }
wait_for "WDS API server ready" 90 ready 6443
wait_for "ITS API server ready" 90 ready 6444

# Pods get projected (bound) ServiceAccount tokens, which the API server signs with sa.key; the
# controller-manager's --service-account-private-key-file only serves Secrets of type
# kubernetes.io/service-account-token created by hand (1.32 generates none by itself), and
# --root-ca-file is what the kube-root-ca.crt ConfigMaps of the projected volumes carry.
# No insecure port since 1.24 (--port is gone); --secure-port 0 serves nothing.
start controller-manager "$BIN/kube-controller-manager" --kubeconfig "$STATE/wds.kubeconfig" \
  --service-account-private-key-file "$P/sa.key" --root-ca-file "$P/ca.crt" --leader-elect=false \
  --use-service-account-credentials=false --secure-port 0 --controllers '*,-node-ipam-controller,-cloud-node-lifecycle-controller'
start scheduler "$BIN/kube-scheduler" --kubeconfig "$STATE/wds.kubeconfig" --leader-elect=false --secure-port 0

# ---- containerd ---------------------------------------------------------------------------------
C="$STATE/containerd"
mkdir -p "$C" "$STATE/cni"
cat >"$STATE/cni/10-loopback.conflist" <<'EOF'
{"cniVersion": "0.4.0", "name": "loopback-only", "plugins": [{"type": "loopback"}]}
EOF
cat >"$C/config.toml" <<EOF
version = 2
root = "$C/root"
state = "$C/state"
[grpc]
  address = "$C/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # No CAP_SYS_RESOURCE here: nothing may lower oom_score_adj (NODE.md, fix 1).
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
EOF
start containerd containerd --config "$C/config.toml"
CTR=(ctr --address "$C/containerd.sock" -n k8s.io)
wait_for "containerd up" 30 "${CTR[@]}" version
"${CTR[@]}" images import "$PAUSE_ARCHIVE" >&2
"${CTR[@]}" images import "$IMAGE_ARCHIVE" >&2
images=$("${CTR[@]}" images ls -q) # (not piped into grep -q: pipefail and SIGPIPE)
[[ $'\n'"$images"$'\n' == *$'\nlocalhost/status-router:dev\n'* ]] ||
  die "importing $IMAGE_ARCHIVE gave no localhost/status-router:dev (images: $(tr '\n' ' ' <<<"$images"))"

# ---- the kubelet --------------------------------------------------------------------------------
K="$STATE/kubelet"
mkdir -p "$K"
cat >"$K/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
# These machines run cgroup v1 (/sys/fs/cgroup is a tmpfs of v1 controllers): 1.32 supports it in
# maintenance mode; say so explicitly (the default becomes true in 1.35).
failCgroupV1: false
containerRuntimeEndpoint: unix://$C/containerd.sock
registerNode: true
failSwapOn: false
makeIPTablesUtilChains: false
nodeStatusUpdateFrequency: 4s
serializeImagePulls: false
evictionHard: {memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
EOF
# AWS_EC2_METADATA_DISABLED: no AWS SDK in the kubelet may call 169.254.169.254 (1.20's in-tree
# credential provider did; kept as a guard beside the network namespace).
start kubelet env AWS_EC2_METADATA_DISABLED=true "$BIN/kubelet" --config "$K/config.yaml" \
  --kubeconfig "$STATE/wds.kubeconfig" --root-dir "$K/root" --cert-dir "$K/pki" \
  --hostname-override 127.0.0.1 --v=1
export KUBECONFIG="$STATE/wds.kubeconfig"
node_ready() { [[ "$("${IN[@]}" kubectl get node 127.0.0.1 -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" == True ]]; }
wait_for "node 127.0.0.1 Ready" 120 node_ready
log "node up in $((SECONDS - T0))s"

NODE_WDS_KUBECONFIG="$STATE/wds.kubeconfig" NODE_ITS_KUBECONFIG="$STATE/its.kubeconfig" \
  NODE_ITS_SECRET_KUBECONFIG="$STATE/its-secret.kubeconfig" NODE_CONTAINERD_ADDRESS="$C/containerd.sock" \
  NODE_STATE_DIR="$STATE" "${IN[@]}" "$@"
