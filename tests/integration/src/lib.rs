//! The integration tests' library, compiled once for the one test binary (`tests/it/`): the
//! policies this crate's build script builds, the shared control plane with our CRDs, a
//! controller running in-process, and Bindings, WorkStatuses and workload objects made the way
//! KubeStellar's binding controller and status agent make them.
//!
//! Every controller watches every Binding of the WDS, and decides for every object a Binding
//! names: a second controller running at the same time would clear the objects of another test
//! (it sees their Bindings but not their WorkStatuses, which carry another `originWdsName`). So
//! the tests that run a controller on the shared control plane take [`Env::new`]'s lock and run
//! one at a time, and [`Env`] deletes their Bindings and workload objects when it is dropped,
//! also when the test panics, so that the next test's controller does not work on them.
//!
//! - [`env`]: the shared control plane ([`Env`]), the policies, a controller running
//!   in-process ([`Running`]);
//! - [`scene`]: the start most controller tests share ([`Scene`]: a WDS name, a namespace, a
//!   WEC, a Binding name);
//! - [`logs`]: the one log subscriber, and searching what it wrote;
//! - [`wait`]: polling until a probe holds, and settling;
//! - [`objects`]: workload objects and what a test observes on them;
//! - [`bindings`]: Bindings and their clauses;
//! - [`reports`]: WorkStatuses as the status agent writes them;
//! - [`swap`] and [`fleet`]: the hot-swap tests' logs, modules, files, and a controller serving a
//!   swappable policy over a fleet of Deployments.
//!
//! Every async test runs under [`async_test`], one runtime flavour for all.

use std::path::{Path, PathBuf};

pub mod bindings;
pub mod env;
pub mod fleet;
pub mod logs;
pub mod objects;
pub mod reports;
pub mod scene;
pub mod swap;
pub mod wait;

pub use bindings::*;
pub use env::*;
pub use fleet::*;
pub use integration_macros::async_test;
pub use logs::*;
pub use objects::*;
pub use reports::*;
pub use scene::*;
pub use swap::*;
pub use wait::*;

/// The component built from a policy crate by this crate's build script:
/// `default`, `strict-singleton`, `label-driven`, `ready-sum` (Python),
/// `annotation-wecs` (JavaScript), or the test-only `misbehaving`,
/// `always-trap`, `noop`, `handwritten-noop`, `python-sandbox` and `js-sandbox`.
pub fn policy_path(stem: &str) -> PathBuf {
    Path::new(env!("OUT_DIR")).join(format!("{stem}.wasm"))
}

/// A compiled-policy cache shared by the tests and the benchmark: a Python
/// component takes seconds to compile, so it is compiled once per build.
pub fn compiled_cache() -> status_router::policy::CompiledCache {
    status_router::policy::CompiledCache::new(Path::new(env!("OUT_DIR")).join("compiled"))
}

/// Loads a built policy through [`compiled_cache`], with these limits.
pub fn load_policy(
    stem: &str,
    limits: status_router::policy::Limits,
) -> status_router::policy::PolicyInstance {
    let engine = status_router::policy::PolicyEngine::with_limits(limits).expect("engine");
    let bytes = std::fs::read(policy_path(stem)).unwrap_or_else(|e| panic!("read {stem}: {e}"));
    let (policy, _) = engine
        .load_cached(&bytes, Some(&compiled_cache()))
        .unwrap_or_else(|e| panic!("load {stem}: {e}"));
    status_router::policy::PolicyInstance::new(policy)
}

/// A file of the workspace, by its path from the workspace root.
pub fn workspace_file(path: &str) -> PathBuf {
    xtask::workspace_root().join(path)
}

/// A CRD as KubeStellar publishes it; see [`xtask::kubestellar_crd`].
pub use xtask::kubestellar_crd;
