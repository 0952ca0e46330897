//! A real local Kubernetes control plane for status-router's tests: one etcd and two
//! kube-apiservers, the WDS and the ITS, as KubeStellar has them.
//!
//! Why real servers and not mocks: status-router must behave against the API server's real
//! semantics (resourceVersion conflicts, status subresources, watches, server-side apply and
//! managedFields, CRD validation), which mocks only imitate.
//!
//! The binaries (kube-apiserver 1.32.13 and etcd 3.5.16, built from their Go modules) are built
//! once by `scripts/build-control-plane.sh` into a cache outside the clone (or found through
//! `$STATUS_ROUTER_CONTROL_PLANE_BIN`). If they are missing, tests fail loudly, never skip.
//!
//! Typical use: every test calls [`wds_client`] / [`its_client`] (which start the shared
//! control plane on first use) and works in its own namespace from [`create_namespace`], so tests
//! of one binary run in parallel against one control plane. [`ControlPlane::start`] gives a
//! private control plane instead, stopped on drop. The servers authorize every request
//! ([`Authorization::AlwaysAllow`]) unless one starts with [`ControlPlane::start_with`]
//! and [`Authorization::Rbac`], for tests of the permissions the controller needs.
//!
//! Cleanup: children are killed by the kernel when the test binary dies (PDEATHSIG, see
//! `process`); the shared control plane is also stopped by an `atexit` hook when the test binary
//! exits normally, and temp dirs left behind by killed runs are removed at the next start.

/// Progress lines that must show even when libtest captures test output (cache reuse, startup
/// time, cleanup): written straight to the stderr handle, which capture does not intercept, and
/// also emitted as `tracing` events.
macro_rules! say {
    ($($arg:tt)*) => {{
        let line = format!($($arg)*);
        tracing::debug!("{line}");
        let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("{line}\n").as_bytes());
    }};
}
pub(crate) use say;

mod control_plane;
mod crds;
mod faults;
pub mod kubestellar;
mod process;
mod setup;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};

pub use control_plane::{ApiServer, Authorization, ControlPlane};
pub use faults::Server;
pub use kubestellar::{Controllers, KUBESTELLAR_BIN_ENV, KubeStellar, KubeStellarCrds};

/// Spawns a process that the kernel kills when this test binary dies
/// (PDEATHSIG, see `process`): for a test's own children, such as a
/// controller it runs as a real process.
pub fn spawn_child(cmd: std::process::Command) -> std::io::Result<std::process::Child> {
    process::spawn(cmd)
}
pub use crds::{install_crd_files, install_crds, parse_crds, parse_documents};
pub use setup::{BIN_ENV, CACHE_KEY, default_bin_dir, find_binaries};

/// What to run when the binaries are missing.
pub const BUILD_HINT: &str = "run `scripts/build-control-plane.sh` (about 15-20 minutes, once per machine) \
or `cargo xtask test`, which calls it; or point $STATUS_ROUTER_CONTROL_PLANE_BIN at a directory \
holding `etcd` and `kube-apiserver`";

/// Everything that can go wrong while starting or using the control plane.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The cached binaries are not there.
    #[error("control plane binaries missing in {dir}: {missing}.\n  To fix: {BUILD_HINT}")]
    BinariesMissing { dir: PathBuf, missing: String },
    /// A file system or OS operation failed.
    #[error("I/O error while {context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A server process could not be started.
    #[error("cannot start {name} ({path}): {source}.\n  To fix: {BUILD_HINT}")]
    Spawn {
        name: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A server process exited during startup.
    #[error("{name} exited during startup ({status}); last lines of {log}:\n{tail}")]
    Exited {
        name: String,
        status: String,
        log: PathBuf,
        tail: String,
    },
    /// A server did not become ready in time.
    #[error(
        "{name} not ready after {timeout:?} (last answer: {last}); last lines of {log}:\n{tail}"
    )]
    NotReady {
        name: String,
        timeout: Duration,
        last: String,
        log: PathBuf,
        tail: String,
    },
    /// Generating the TLS or service-account keys failed.
    #[error("generating certificates: {0}")]
    Cert(#[from] rcgen::Error),
    /// Reading or using the kubeconfig failed.
    #[error("kubeconfig: {0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    /// An API call failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// YAML (CRDs, kubeconfig) could not be parsed or written.
    #[error("YAML in {origin}: {source}")]
    Yaml {
        origin: String,
        #[source]
        source: serde_yaml::Error,
    },
    /// KubeStellar's controller-manager was not built.
    #[error(
        "KubeStellar's controller-manager is missing at {path}.\n  To fix: run \
         `scripts/build-kubestellar.sh` (about 5 minutes, once per machine) or `cargo xtask test`, \
         which calls it; or point ${KUBESTELLAR_BIN_ENV} at the binary"
    )]
    KubeStellarMissing { path: PathBuf },
    /// A file of a pinned Go module could not be read.
    #[error("the pinned Go modules (go/kubestellar): {0}")]
    GoModule(String),
    /// A CRD was created but never became Established.
    #[error("CRD {name} not Established after {timeout:?}")]
    CrdNotEstablished { name: String, timeout: Duration },
}

impl Error {
    /// Whether a server failed because a port chosen as free was taken meanwhile.
    pub fn is_port_conflict(&self) -> bool {
        match self {
            Error::Exited { tail, .. } | Error::NotReady { tail, .. } => {
                tail.contains("address already in use")
            }
            _ => false,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

static SHARED: OnceLock<Result<ControlPlane, String>> = OnceLock::new();

extern "C" fn stop_shared_at_exit() {
    if let Some(Ok(cp)) = SHARED.get() {
        cp.stop();
    }
}

/// The control plane shared by all tests of this test binary, started on first use.
///
/// Panics (with what to run) if it cannot start; every later call panics with the same message
/// instead of retrying. It is stopped at process exit (atexit hook, or PDEATHSIG if the process
/// is killed).
pub fn shared() -> &'static ControlPlane {
    let result = SHARED.get_or_init(|| match ControlPlane::start() {
        Ok(cp) => {
            // SAFETY: registering a plain `extern "C" fn` with the C runtime.
            unsafe { libc::atexit(stop_shared_at_exit) };
            Ok(cp)
        }
        Err(e) => Err(e.to_string()),
    });
    match result {
        Ok(cp) => cp,
        Err(e) => panic!("testenv: the local control plane could not start: {e}"),
    }
}

/// A new client for the shared WDS, bound to the calling test's runtime.
pub async fn wds_client() -> Client {
    shared()
        .wds_client()
        .await
        .unwrap_or_else(|e| panic!("testenv: WDS client: {e}"))
}

/// A new client for the shared ITS, bound to the calling test's runtime.
pub async fn its_client() -> Client {
    shared()
        .its_client()
        .await
        .unwrap_or_else(|e| panic!("testenv: ITS client: {e}"))
}

/// A DNS-1123 name unique in this process and across concurrent test processes:
/// `<prefix>-<pid>-<counter>`.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let prefix: String = prefix
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    let prefix = prefix.trim_matches('-');
    let prefix = if prefix.is_empty() { "t" } else { prefix };
    format!("{prefix}-{}-{n}", std::process::id())
}

/// Creates a namespace named [`unique_name`]`(prefix)` and returns its name. Panics on error.
pub async fn create_namespace(client: &Client, prefix: &str) -> String {
    let name = unique_name(prefix);
    create_namespace_named(client, &name).await;
    name
}

/// Creates the namespace `name` (on a private control plane, where names
/// cannot collide). Panics on error.
pub async fn create_namespace_named(client: &Client, name: &str) {
    let name = name.to_string();
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("testenv: creating namespace {name}: {e}"));
}

#[cfg(test)]
mod tests {
    #[test]
    fn unique_names_are_dns_labels_and_distinct() {
        let a = super::unique_name("My_Test");
        let b = super::unique_name("My_Test");
        assert_ne!(a, b);
        assert!(a.starts_with("my-test-"), "{a}");
        assert!(
            a.len() <= 63
                && a.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
        assert!(super::unique_name("").starts_with("t-"));
    }

    #[test]
    fn parses_multi_document_crd_yaml() {
        let yaml = include_str!("../tests/fixtures/widgets.testenv.example.com.yaml");
        let crds = super::parse_crds(&format!("{yaml}\n---\n"), "fixture").expect("parse");
        assert_eq!(crds.len(), 1);
        assert_eq!(crds[0].spec.names.kind, "Widget");
    }
}
