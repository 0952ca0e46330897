//! Building guest policies into WebAssembly components.
//!
//! Policies are ordinary Rust crates compiled for `wasm32-unknown-unknown`;
//! `wit-bindgen` embeds the WIT world in the core module, and `wit-component`
//! wraps the module into a component. Nothing here links WASI, so a component
//! that imports anything is a policy bug the host rejects at load.
//!
//! Used by `cargo xtask build-policies` and by the build scripts of `host`
//! (which embeds the default policy) and of the integration tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fmt, fs};

pub mod gomod;
pub mod lang;

/// The guest target. Plain `unknown`: policies import nothing, not even WASI.
pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// Every policy of the workspace: (Cargo package, component file stem).
pub const POLICIES: &[(&str, &str)] = &[
    ("default-policy", "default"),
    ("strict-singleton", "strict-singleton"),
    ("label-driven", "label-driven"),
];

/// A failed build step, with what to try.
#[derive(Debug)]
pub struct BuildError(String);

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BuildError {}

fn fail<T>(msg: impl Into<String>) -> Result<T, BuildError> {
    Err(BuildError(msg.into()))
}

/// The workspace root (the parent of `xtask/`).
///
/// Found at run time from the `CARGO_MANIFEST_DIR` cargo sets for `cargo run`,
/// `cargo test` and build scripts (the nearest directory above it that holds
/// `xtask/Cargo.toml`), and only then from where xtask was compiled: cargo
/// reuses artifacts built in another checkout of the same tree when the two
/// share a target dir (CI's cache), and a path fixed at compile time would
/// then name that other checkout.
pub fn workspace_root() -> PathBuf {
    let compiled = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .and_then(|dir| {
            dir.ancestors()
                .find(|d| d.join("xtask/Cargo.toml").is_file())
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(|| {
            compiled
                .parent()
                .expect("xtask lives in the workspace root")
                .to_path_buf()
        })
}

/// A CRD of KubeStellar's as a KubeStellar install has it, for the tests that run with
/// KubeStellar's CRDs instead of ours: `plural` is `bindings`, `bindingpolicies`,
/// `statuscollectors`, `combinedstatuses` (read from KubeStellar's Go module, see [`gomod`])
/// or `workstatuses`.
///
/// The WorkStatus CRD belongs to KubeStellar's status add-on, whose module the Go module proxy
/// does not serve here: it is read from the shared `kubestellar-crds` directory beside the clone
/// when that holds it (CI has it), and is otherwise our own generated CRDs
/// (`config/crds/kubestellar.yaml`, which `the_checked_in_crds_do_not_drift` keeps equal to the
/// types), said on stderr. Panics with what to fix when Go cannot read the module.
pub fn kubestellar_crd(plural: &str) -> PathBuf {
    if plural == "workstatuses" {
        let shared = workspace_root()
            .join("../shared/kubestellar-crds/control.kubestellar.io_workstatuses.yaml");
        if shared.is_file() {
            return shared;
        }
        eprintln!(
            "KubeStellar's WorkStatus CRD is not at {}: using ours (config/crds/kubestellar.yaml)",
            shared.display()
        );
        return workspace_root().join("config/crds/kubestellar.yaml");
    }
    gomod::kubestellar_crds_dir()
        .map(|dir| dir.join(format!("control.kubestellar.io_{plural}.yaml")))
        .unwrap_or_else(|e| panic!("KubeStellar's CRDs from its Go module: {e}"))
}

/// The workspace's target directory, honouring `CARGO_TARGET_DIR`.
pub fn target_dir() -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        None => workspace_root().join("target"),
    }
}

/// Whether the rustup target for guests is installed in the active toolchain.
pub fn wasm_target_installed() -> bool {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .is_some_and(|sysroot| {
            Path::new(&sysroot)
                .join("lib/rustlib")
                .join(WASM_TARGET)
                .exists()
        })
}

/// An error naming the command that installs the guest target, unless it is installed.
fn require_wasm_target() -> Result<(), BuildError> {
    if wasm_target_installed() {
        return Ok(());
    }
    fail(format!(
        "the Rust target {WASM_TARGET} is not installed; run `rustup target add {WASM_TARGET}` \
         (`cargo xtask setup` does it)"
    ))
}

/// `cargo build` of a guest for [`WASM_TARGET`] into `target`, with the
/// outer build's settings removed and, for `release`, the guests' own profile.
fn guest_cargo(release: bool, target: &Path) -> Command {
    let mut cargo = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo
        .args(["build", "--quiet", "--target", WASM_TARGET])
        .arg("--target-dir")
        .arg(target);
    if release {
        // Small, fast guests: no debug info, whole-program optimisation.
        cargo
            .arg("--release")
            .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
            .env("CARGO_PROFILE_RELEASE_STRIP", "true")
            .env("CARGO_PROFILE_RELEASE_LTO", "true")
            .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1");
    }
    // Settings meant for the outer build (clippy's wrapper, host RUSTFLAGS,
    // coverage) must not leak into the guest build.
    for var in [
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_MAKEFLAGS",
    ] {
        cargo.env_remove(var);
    }
    cargo
}

/// Builds the guest `package` with [`guest_cargo`] (`args` names the package
/// to cargo) into `target`, and returns the core module cargo wrote; `what`
/// names it in errors.
fn build_guest(
    release: bool,
    target: &Path,
    package: &str,
    what: &str,
    args: impl FnOnce(&mut Command),
) -> Result<PathBuf, BuildError> {
    let mut cargo = guest_cargo(release, target);
    args(&mut cargo);
    let status = cargo
        .status()
        .map_err(|e| BuildError(format!("run cargo for {what}: {e}")))?;
    if !status.success() {
        return fail(format!(
            "building {what} failed ({status}); see cargo's output above"
        ));
    }
    let profile = if release { "release" } else { "debug" };
    Ok(target
        .join(WASM_TARGET)
        .join(profile)
        .join(format!("{}.wasm", package.replace('-', "_"))))
}

/// Compiles the given policy packages for the guest target and writes each
/// component to `out_dir/<stem>.wasm`. Returns the written paths.
pub fn build_policies(
    policies: &[(&str, &str)],
    release: bool,
    out_dir: &Path,
) -> Result<Vec<PathBuf>, BuildError> {
    require_wasm_target()?;
    // A target dir of its own: the outer cargo holds the lock of the main one
    // while a build script runs.
    let guest_target = target_dir().join("wasm-guests");
    let mut written = Vec::new();
    fs::create_dir_all(out_dir).map_err(|e| BuildError(format!("create {out_dir:?}: {e}")))?;
    // One cargo invocation per policy: a policy that reuses another's crate with
    // the `component` feature off must not see it turned on by feature unification.
    for (package, stem) in policies {
        let core = build_guest(
            release,
            &guest_target,
            package,
            &format!("policy {package} for {WASM_TARGET}"),
            |cargo| {
                cargo.current_dir(workspace_root()).args(["-p", package]);
            },
        )?;
        let component = componentize(&core)?;
        let out = out_dir.join(format!("{stem}.wasm"));
        fs::write(&out, component).map_err(|e| BuildError(format!("write {out:?}: {e}")))?;
        written.push(out);
    }
    Ok(written)
}

/// Builds a Rust policy crate that is not a workspace member (as
/// `status-router policy new --lang rust` writes it) into a component.
pub fn build_standalone_crate(dir: &Path) -> Result<Vec<u8>, BuildError> {
    require_wasm_target()?;
    let manifest = dir.join("Cargo.toml");
    let text =
        fs::read_to_string(&manifest).map_err(|e| BuildError(format!("read {manifest:?}: {e}")))?;
    let package = text
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("name = ")
                .map(|n| n.trim_matches('"').to_string())
        })
        .ok_or_else(|| BuildError(format!("{manifest:?} names no package")))?;
    // The workspace guests' target dir, with their settings: the dependencies
    // (wit-bindgen and its macros) are already built there.
    let target = target_dir().join("wasm-guests");
    let core = build_guest(true, &target, &package, &format!("{manifest:?}"), |cargo| {
        cargo.arg("--manifest-path").arg(&manifest);
    })?;
    componentize(&core)
}

/// Wraps a core module built with `wit-bindgen` into a component.
pub fn componentize(core_module: &Path) -> Result<Vec<u8>, BuildError> {
    let bytes = fs::read(core_module)
        .map_err(|e| BuildError(format!("read core module {core_module:?}: {e}")))?;
    let component = wit_component::ComponentEncoder::default()
        .module(&bytes)
        .and_then(|encoder| encoder.validate(true).encode())
        .map_err(|e| BuildError(format!("turn {core_module:?} into a component: {e:#}")))?;
    // The strip drops rustc's own producers field; `policy check` names the language.
    name_toolchain(&component, "Rust", None)
}

/// Adds `language: LANGUAGE` (and `processed-by: TOOL VERSION`) to the
/// component's producers section, which `status-router policy check` prints.
pub fn name_toolchain(
    component: &[u8],
    language: &str,
    tool: Option<(&str, &str)>,
) -> Result<Vec<u8>, BuildError> {
    let mut producers = wasm_metadata::Producers::empty();
    producers.add("language", language, "");
    if let Some((tool, version)) = tool {
        producers.add("processed-by", tool, version);
    }
    producers
        .add_to_wasm(component)
        .map_err(|e| BuildError(format!("name the toolchain in the component: {e:#}")))
}

/// Wraps a core module written by hand, which exports the functions of the
/// `status-policy` world under their canonical ABI names, into a component:
/// the world's type information is embedded first, as `wit-bindgen` does for
/// Rust guests.
pub fn componentize_core(mut core: Vec<u8>) -> Result<Vec<u8>, BuildError> {
    let wit = workspace_root().join("wit");
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) = resolve
        .push_dir(&wit)
        .map_err(|e| BuildError(format!("read the WIT package in {wit:?}: {e:#}")))?;
    let world = resolve
        .select_world(&[package], Some("status-policy"))
        .map_err(|e| BuildError(format!("find the world status-policy: {e:#}")))?;
    wit_component::embed_component_metadata(
        &mut core,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
        false,
    )
    .and_then(|()| {
        wit_component::ComponentEncoder::default()
            .module(&core)?
            .validate(true)
            .encode()
    })
    .map_err(|e| {
        BuildError(format!(
            "turn a hand-written core module into a component: {e:#}"
        ))
    })
}

/// Tells cargo to rebuild when the policies' sources or the WIT package change.
pub fn rerun_if_policy_sources_change() {
    let root = workspace_root();
    for dir in ["wit", "guest", "policies", "tests/policies", "xtask/lang"] {
        println!("cargo::rerun-if-changed={}", root.join(dir).display());
    }
}
