//! Shared helpers of the integration tests.

use std::path::{Path, PathBuf};

/// The component built from a policy crate by this crate's build script:
/// `default`, `strict-singleton`, `label-driven`, or the test-only
/// `misbehaving`, `always-trap`, `noop` and `handwritten-noop`.
pub fn policy_path(stem: &str) -> PathBuf {
    Path::new(env!("OUT_DIR")).join(format!("{stem}.wasm"))
}

/// A file of the workspace, by its path from the workspace root.
pub fn workspace_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

/// KubeStellar's published CRDs, for the tests whose names contain
/// [`xtask::NEEDS_KUBESTELLAR_CRDS`]; see [`xtask::require_kubestellar_crds`].
pub use xtask::require_kubestellar_crds as kubestellar_crds_dir;
