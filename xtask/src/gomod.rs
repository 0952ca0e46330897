//! Files of the Go modules the project pins in `go/` and reads without building: KubeStellar's
//! CRDs (`config/crd/bases` of `github.com/kubestellar/kubestellar`), KubeFlex's `ControlPlane`
//! CRD and OCM's `ManagedCluster` CRD.
//!
//! Why from the Go module cache: the project never copies another project's files in, and the
//! versions stay those that `go/kubestellar/go.mod` pins for the controller-manager the tests
//! build (`scripts/build-kubestellar.sh`), so the CRDs and the binary that serves them always
//! agree. `go mod download` verifies each module against `go.sum` and fetches it from the Go
//! module proxy on a machine that lacks it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::workspace_root;

/// KubeStellar's module, pinned in `go/kubestellar/go.mod`.
pub const KUBESTELLAR: &str = "github.com/kubestellar/kubestellar";
/// KubeFlex's module (the `ControlPlane` CRD).
pub const KUBEFLEX: &str = "github.com/kubestellar/kubeflex";
/// OCM's API module (the `ManagedCluster` CRD).
pub const OCM_API: &str = "open-cluster-management.io/api";

/// The Go module that pins KubeStellar and the modules whose CRDs the tests read.
pub fn kubestellar_go_module() -> PathBuf {
    workspace_root().join("go/kubestellar")
}

/// The directory of `module` (at the version `go/kubestellar/go.mod` pins) in the Go module
/// cache, downloading it first if needed.
pub fn module_dir(module: &str) -> Result<PathBuf, String> {
    let dir = kubestellar_go_module();
    let go = |args: &[&str]| -> Result<String, String> {
        let out = Command::new("go")
            .args(args)
            .current_dir(&dir)
            .env("GOTOOLCHAIN", "local")
            .env("GOFLAGS", "-mod=readonly")
            .output()
            .map_err(|e| {
                format!(
                    "cannot run `go` ({e}): Go 1.25 or newer is needed to read {module} from \
                     the Go module cache (see README, 'The two commands')"
                )
            })?;
        if !out.status.success() {
            return Err(format!(
                "`go {}` in {} failed: {}",
                args.join(" "),
                dir.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    go(&["mod", "download", module])?;
    let found = go(&["list", "-m", "-f", "{{.Dir}}", module])?;
    if found.is_empty() || !Path::new(&found).is_dir() {
        return Err(format!(
            "{module} is not in the Go module cache after `go mod download` (got {found:?})"
        ));
    }
    Ok(PathBuf::from(found))
}

/// A file of `module`, which must exist.
pub fn module_file(module: &str, path: &str) -> Result<PathBuf, String> {
    let file = module_dir(module)?.join(path);
    if file.is_file() {
        Ok(file)
    } else {
        Err(format!("{module} has no file {path} ({})", file.display()))
    }
}

/// KubeStellar's published CRDs: `config/crd/bases` of its module (Binding, BindingPolicy,
/// StatusCollector, CombinedStatus, CustomTransform). The WorkStatus CRD is not among them: it
/// belongs to KubeStellar's status add-on, a module the Go module proxy does not serve here.
pub fn kubestellar_crds_dir() -> Result<PathBuf, String> {
    Ok(module_dir(KUBESTELLAR)?.join("config/crd/bases"))
}

/// KubeFlex's `ControlPlane` CRD.
pub fn controlplane_crd() -> Result<PathBuf, String> {
    module_file(
        KUBEFLEX,
        "config/crd/bases/tenancy.kflex.kubestellar.org_controlplanes.yaml",
    )
}

/// OCM's `ManagedCluster` CRD.
pub fn managedcluster_crd() -> Result<PathBuf, String> {
    module_file(
        OCM_API,
        "cluster/v1/0000_00_clusters.open-cluster-management.io_managedclusters.crd.yaml",
    )
}
