//! `cargo xtask <task>`: every command a newcomer or CI needs, with the
//! install steps included, so a fresh machine needs nothing but Rust.

mod testrun;

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use xtask::lang::FOREIGN_POLICIES;
use xtask::{
    POLICIES, WASM_TARGET, build_policies, target_dir, wasm_target_installed, workspace_root,
};

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  setup            add the {WASM_TARGET} rustup target if it is missing
  build-policies   build every policy component (Rust, Python, JavaScript) into
                   <target>/policies/; Python and JS builds are cached by input hash
  build-policy DIR [-o OUT]
                   build the policy in DIR (as `status-router policy new` writes it)
                   into OUT (default DIR/<name of DIR>.wasm)
  control-plane    build (once, from Go modules) and cache Kubernetes 1.32 (kube-apiserver,
                   etcd, the node's binaries) and KubeStellar's controller-manager
  test             setup, then every test: unit, policy and integration (all test
                   binaries, whatever fails), KubeStellar's judgement included;
                   then the real-node test (node-test, needs root)
  demo             setup, then the local demo with the embedded default policy
  bench            setup, then every benchmark (see BENCHMARKS.md)
  chaos [--seed N] [--objects N] [--seconds N]
                   the seeded fault-injection suite (see RELIABILITY.md)
  differential [--seed N] [--objects N]
                   KubeStellar's own status controller against status-router on one seeded
                   scenario (see docs/kubestellar-differences.md)

  image            build the status-router image (OCI archive) with buildah, no daemon;
                   --stage-only: only its build context, for docker/podman build;
                   --dev: from the dev-profile binary (debug info stripped)
  node-test        the real-node test: image, a Kubernetes 1.32 node in a network namespace,
                   config/default on it (needs root; `test` runs it too)
  node-bench       leader failover times on the real node [--runs N] (see BENCHMARKS.md)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup(),
        Some("build-policies") => setup().and_then(|()| build_all_policies()),
        Some("build-policy") => setup().and_then(|()| build_one_policy(&args[1..])),
        Some("control-plane") => control_plane(),
        Some("test") => setup()
            .and_then(|()| build_all_policies())
            .and_then(|()| control_plane())
            // The chaos and differential suites run the real binary.
            .and_then(|()| build_dev_binaries())
            .and_then(|()| {
                // The real-node test runs even when a test binary failed: both results show.
                let tests = testrun::run();
                let node = node(&["check"]);
                match (tests, node) {
                    (Ok(()), Ok(())) => Ok(()),
                    (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
                    (Err(t), Err(n)) => Err(format!("{t}; and the real-node test: {n}").into()),
                }
            }),
        Some("demo") => setup()
            .and_then(|()| build_all_policies())
            .and_then(|()| control_plane())
            .and_then(|()| demo()),
        Some("image") => image(
            args.iter().any(|a| a == "--stage-only"),
            if args.iter().any(|a| a == "--dev") {
                "dev"
            } else {
                "release"
            },
        )
        .map(drop),
        Some("node-test") => setup()
            .and_then(|()| control_plane())
            .and_then(|()| node(&["check"])),
        Some("node-bench") => setup().and_then(|()| control_plane()).and_then(|()| {
            let mut bench = vec!["bench"];
            bench.extend(args.iter().skip(1).map(String::as_str));
            node(&bench)
        }),
        Some("bench") => setup()
            .and_then(|()| control_plane())
            .and_then(|()| cargo(&["bench", "-p", "status-router"]))
            .and_then(|()| cargo(&["bench", "-p", "integration-tests"])),
        Some("chaos") => setup()
            .and_then(|()| control_plane())
            .and_then(|()| chaos(&args[1..])),
        Some("differential") => setup()
            .and_then(|()| control_plane())
            .and_then(|()| differential(&args[1..])),
        _ => {
            eprintln!("{}", USAGE.replace("{WASM_TARGET}", WASM_TARGET));
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn setup() -> Result {
    if !wasm_target_installed() {
        eprintln!("xtask: adding the rustup target {WASM_TARGET}");
        run(Command::new("rustup").args(["target", "add", WASM_TARGET]))?;
    }
    debian_packages()?;
    // CI runs `cargo fmt` and `cargo clippy`; a minimal toolchain lacks them.
    for (tool, component) in [("cargo-fmt", "rustfmt"), ("cargo-clippy", "clippy")] {
        let present = Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !present {
            eprintln!("xtask: adding the rustup component {component}");
            run(Command::new("rustup").args(["component", "add", component]))?;
        }
    }
    Ok(())
}

/// Python's venv and Node.js with npm, for the Python and JavaScript policies
/// (their pinned toolchains install themselves under the cache dir when first
/// used). Debian bookworm's packages do: componentize-qjs 0.4.5 wants Node.js
/// 18 or newer, bookworm has 18.19.
fn debian_packages() -> Result {
    let works = |cmd: &str, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let mut missing = Vec::new();
    if !works("python3", &["-c", "import venv, ensurepip"]) {
        missing.push("python3-venv");
    }
    if !works("node", &["--version"]) {
        missing.push("nodejs");
    }
    if !works("npm", &["--version"]) {
        missing.push("npm");
    }
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing Debian packages {missing:?} (for Python and JavaScript policies)");
    run(Command::new("apt-get").arg("update"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

fn build_one_policy(args: &[String]) -> Result {
    let (dir, out) = match args {
        [dir] => (PathBuf::from(dir), None),
        [dir, flag, out] if flag == "-o" => (PathBuf::from(dir), Some(PathBuf::from(out))),
        _ => return Err("usage: cargo xtask build-policy DIR [-o OUT.wasm]".into()),
    };
    // `cargo run` keeps the caller's directory: relative paths are the caller's.
    let cwd = std::env::current_dir()?;
    let dir = cwd.join(dir);
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().to_string()))
        .unwrap_or_else(|| "policy".into());
    let out = out
        .map(|o| cwd.join(o))
        .unwrap_or_else(|| dir.join(format!("{name}.wasm")));
    xtask::lang::build_policy_dir(&dir, &out)?;
    eprintln!("xtask: built {}", out.display());
    Ok(())
}

fn build_all_policies() -> Result {
    let out = policy_dir();
    for path in build_policies(POLICIES, true, &out)? {
        eprintln!("xtask: built {}", path.display());
    }
    // Python and JavaScript: served from the build cache when unchanged.
    for policy in FOREIGN_POLICIES {
        let path = policy.build(&out)?;
        eprintln!("xtask: built {}", path.display());
    }
    Ok(())
}

/// Where `build-policies` puts the components, for the CLI and the demo.
fn policy_dir() -> PathBuf {
    target_dir().join("policies")
}

/// Kubernetes 1.32 and KubeStellar's controller-manager, built from their Go modules (cached
/// outside the clone; a second call returns at once).
fn control_plane() -> Result {
    let started = std::time::Instant::now();
    run(Command::new("bash").arg(workspace_root().join("scripts/build-control-plane.sh")))?;
    run(Command::new("bash").arg(workspace_root().join("scripts/build-kubestellar.sh")))?;
    eprintln!(
        "xtask: the Go builds (or their cache check) took {:.0?}",
        started.elapsed()
    );
    Ok(())
}

/// Builds the binary (profile `release`, or `dev`) and the image from it; the OCI archive's path.
fn image(stage_only: bool, profile: &str) -> Result<PathBuf> {
    let started = std::time::Instant::now();
    if profile == "dev" {
        build_dev_binaries()?;
    } else {
        cargo(&[
            "build",
            "--profile",
            profile,
            "-p",
            "status-router",
            "--bin",
            "status-router",
        ])?;
    }
    eprintln!("xtask: {profile} build took {:.0?}", started.elapsed());
    let dir = if profile == "dev" { "debug" } else { profile };
    let out = target_dir().join("image");
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(workspace_root())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let dirty = git(&["status", "--porcelain"]).is_some_and(|s| !s.is_empty());
    let revision = git(&["rev-parse", "HEAD"])
        .map(|r| if dirty { format!("{r}-dirty") } else { r })
        .unwrap_or_else(|| "unknown".into());
    let source = git(&["remote", "get-url", "origin"]).unwrap_or_else(|| "unknown".into());
    let mut script = Command::new("bash");
    script
        .arg(workspace_root().join("scripts/image.sh"))
        .arg(target_dir().join(dir).join("status-router"))
        .arg(&out)
        .env("STRIP_DEBUG", if profile == "dev" { "1" } else { "" })
        .env("VERSION", env!("CARGO_PKG_VERSION"))
        .env("REVISION", revision)
        .env("SOURCE", source);
    if stage_only {
        script.arg("--stage-only");
    }
    let started = std::time::Instant::now();
    run(&mut script)?;
    eprintln!("xtask: image step took {:.0?}", started.elapsed());
    Ok(out.join("status-router.oci.tar"))
}

/// The real-node test driver (`tests/node`), inside the node of `scripts/node.sh`.
fn node(args: &[&str]) -> Result {
    let root = Command::new("id").arg("-u").output()?;
    if String::from_utf8_lossy(&root.stdout).trim() != "0" {
        return Err(
            "the real-node test (part of `cargo xtask test`) needs root: network \
namespaces, containerd, runc and the kubelet's cgroups. It was NOT run. Run as root \
(sudo -E cargo xtask test), or `cargo test --workspace` for the tests without it."
                .into(),
        );
    }
    // The dev binary by default: `cargo test` has just built its dependencies, and a second,
    // release build of wasmtime would about double CI's cold compile. `STATUS_ROUTER_NODE_PROFILE=
    // release` tests the release image instead.
    let profile = std::env::var("STATUS_ROUTER_NODE_PROFILE").unwrap_or_else(|_| "dev".into());
    let archive = image(false, &profile)?;
    build_dev_binaries()?;
    let started = std::time::Instant::now();
    let result = run(Command::new("bash")
        .env(
            "NODE_IMAGE_ROOTFS",
            target_dir().join("image/context/rootfs"),
        )
        .env("NODE_WORKSPACE", workspace_root())
        .arg(workspace_root().join("scripts/node.sh"))
        .arg(archive)
        .arg("--")
        .arg(target_dir().join("debug/node-test"))
        .args(args));
    eprintln!("xtask: the real node took {:.0?}", started.elapsed());
    result
}

fn demo() -> Result {
    run(Command::new("bash").arg(workspace_root().join("scripts/demo.sh")))
}

/// Every binary of the workspace (`status-router`, `node-test`, ...) in the dev profile, selected
/// as `cargo test --workspace` selects them. Cargo enables a dependency's features from the
/// packages and targets one command selects (dev-dependencies only with tests), so
/// `cargo build -p status-router` would compile tokio, kube, wasmtime and the rest a second time
/// with other features: measured, 8 of a cold CI run's 50 minutes. With the same selection, the
/// binaries and every test share one set of dependencies.
fn build_dev_binaries() -> Result {
    cargo(&["build", "--workspace", "--bins", "--tests"])
}

/// `chaos [--seed N] [--objects N] [--seconds N]`: the chaos suite's test
/// with its settings in the environment (the defaults are the short form).
fn chaos(args: &[String]) -> Result {
    seeded_suite(
        "chaos",
        args,
        &[
            ("--seed", "CHAOS_SEED"),
            ("--objects", "CHAOS_OBJECTS"),
            ("--seconds", "CHAOS_SECONDS"),
        ],
    )
}

/// `differential [--seed N] [--objects N]`: the differential suite's test with its settings in
/// the environment (the defaults are the short form `test` runs).
fn differential(args: &[String]) -> Result {
    seeded_suite(
        "differential",
        args,
        &[("--seed", "DIFF_SEED"), ("--objects", "DIFF_OBJECTS")],
    )
}

/// Runs the tests of the module `test_name` of the integration test binary `it` with each
/// `--flag N` of `args` as its env var.
fn seeded_suite(test_name: &str, args: &[String], flags: &[(&str, &str)]) -> Result {
    let mut test = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // `--workspace`, as `build_dev_binaries`: the same dependency builds.
    test.args(["test", "--workspace", "--test", "it"]);
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let Some((_, var)) = flags.iter().find(|(f, _)| f == flag) else {
            return Err(format!("{test_name}: unknown argument {flag:?}").into());
        };
        let value = args
            .next()
            .filter(|v| v.parse::<u64>().is_ok())
            .ok_or_else(|| format!("{test_name}: {flag} needs a number"))?;
        test.env(var, value);
    }
    build_dev_binaries()?;
    let module = format!("{test_name}::");
    run(test.args(["--", module.as_str(), "--nocapture"]))
}

fn cargo(args: &[&str]) -> Result {
    run(Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())).args(args))
}

fn run(cmd: &mut Command) -> Result {
    let status = cmd
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("could not start {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed ({status})").into())
    }
}
