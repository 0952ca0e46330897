//! Shared helpers of the integration tests.

use std::path::{Path, PathBuf};

/// The component built from a policy crate by this crate's build script:
/// `default`, `strict-singleton`, `label-driven`, `ready-sum` (Python),
/// `annotation-wecs` (JavaScript), or the test-only `misbehaving`,
/// `always-trap`, `noop`, `handwritten-noop`, `python-sandbox` and `js-sandbox`.
pub fn policy_path(stem: &str) -> PathBuf {
    Path::new(env!("OUT_DIR")).join(format!("{stem}.wasm"))
}

/// A compiled-policy cache shared by the test binaries: a Python component
/// takes seconds to compile, so each test binary compiles it once per build.
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
