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
/// [`xtask::NEEDS_KUBESTELLAR_CRDS`]. Run on its own, such a test fails when
/// they are missing, saying where to put them; `cargo xtask test` leaves those
/// tests out on a clone without them and lists them as not run.
pub fn kubestellar_crds_dir() -> PathBuf {
    let dir = xtask::kubestellar_crds_dir();
    assert!(
        xtask::kubestellar_crds_present(),
        "KubeStellar's published CRDs (control.kubestellar.io_*.yaml) are not in {}: set \
         ${} to a directory holding them (KubeStellar's config/crd/bases/), or put the \
         shared `kubestellar-crds` directory beside the clone",
        dir.display(),
        xtask::KUBESTELLAR_CRDS_ENV,
    );
    dir
}
