//! `cargo xtask <task>`: every command a newcomer or CI needs, with the
//! install steps included, so a fresh machine needs nothing but Rust.

mod testrun;

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use xtask::{
    POLICIES, WASM_TARGET, build_policies, target_dir, wasm_target_installed, workspace_root,
};

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  setup            add the {WASM_TARGET} rustup target if it is missing
  build-policies   build every policy component into <target>/policies/
  control-plane    build (once) and cache kube-apiserver and etcd
  test             setup, then every test: unit, policy and integration (all test
                   binaries, whatever fails; tests that need KubeStellar's published CRDs
                   run when $STATUS_ROUTER_KUBESTELLAR_CRDS or ../shared/kubestellar-crds
                   holds them, and are listed as not run otherwise)
  demo             setup, then the local demo with the embedded default policy
  bench            setup, then every benchmark (see BENCHMARKS.md)
  chaos [--seed N] [--objects N] [--seconds N]
                   the seeded fault-injection suite (see RELIABILITY.md)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup(),
        Some("build-policies") => setup().and_then(|()| build_all_policies()),
        Some("control-plane") => control_plane(),
        Some("test") => setup()
            .and_then(|()| build_all_policies())
            .and_then(|()| control_plane())
            // The chaos suite runs the real binary.
            .and_then(|()| build_controller())
            .and_then(|()| testrun::run()),
        Some("demo") => setup()
            .and_then(|()| build_all_policies())
            .and_then(|()| control_plane())
            .and_then(|()| demo()),
        Some("bench") => setup()
            .and_then(|()| control_plane())
            .and_then(|()| cargo(&["bench", "-p", "status-router"]))
            .and_then(|()| cargo(&["bench", "-p", "integration-tests"])),
        Some("chaos") => setup()
            .and_then(|()| control_plane())
            .and_then(|()| chaos(&args[1..])),
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

fn build_all_policies() -> Result {
    let out = policy_dir();
    for path in build_policies(POLICIES, true, &out)? {
        eprintln!("xtask: built {}", path.display());
    }
    Ok(())
}

/// Where `build-policies` puts the components, for the CLI and the demo.
fn policy_dir() -> PathBuf {
    target_dir().join("policies")
}

fn control_plane() -> Result {
    run(Command::new("bash").arg(workspace_root().join("scripts/build-control-plane.sh")))
}

fn demo() -> Result {
    run(Command::new("bash").arg(workspace_root().join("scripts/demo.sh")))
}

fn build_controller() -> Result {
    cargo(&["build", "-p", "status-router", "--bin", "status-router"])
}

/// `chaos [--seed N] [--objects N] [--seconds N]`: the chaos suite's test
/// with its settings in the environment (the defaults are the short form).
fn chaos(args: &[String]) -> Result {
    let mut test = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    test.args(["test", "-p", "integration-tests", "--test", "chaos"]);
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let var = match flag.as_str() {
            "--seed" => "CHAOS_SEED",
            "--objects" => "CHAOS_OBJECTS",
            "--seconds" => "CHAOS_SECONDS",
            other => return Err(format!("chaos: unknown argument {other:?}").into()),
        };
        let value = args
            .next()
            .filter(|v| v.parse::<u64>().is_ok())
            .ok_or_else(|| format!("chaos: {flag} needs a number"))?;
        test.env(var, value);
    }
    build_controller()?;
    run(test.args(["--", "--nocapture"]))
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
