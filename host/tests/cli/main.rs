//! Acceptance tests of `status-router policy check|decide|aggregate|test`
//! and `status-router collector test`:
//! the binary is run as an operator would, and each test checks the exit
//! status and what the operator reads on stdout and stderr.
//!
//! Bad components are assembled from WAT into a temporary directory; requests
//! and aggregation inputs are the files under `tests/fixtures/`. One module
//! per subcommand; this file holds the helpers they share.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;

mod aggregate;
mod cases;
mod check;
mod collector;
mod decide;
mod new;
mod run;

/// The embedded default policy, where a path is expected.
const BUILTIN: &str = "builtin:default";
/// The interface every policy must export.
const INTERFACE: &str = "kubestellar:status-policy/policy@0.1.0";

/// What one run of the binary did.
struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    fn from(out: Output) -> Self {
        Self {
            success: out.status.success(),
            stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
        }
    }

    /// Panics unless the run succeeded; returns stdout.
    fn ok(self) -> String {
        assert!(self.success, "expected success;\n{self}");
        self.stdout
    }

    /// Panics unless the run failed; returns stderr.
    fn failed(self) -> String {
        assert!(!self.success, "expected a failure;\n{self}");
        self.stderr
    }

    /// The last non-empty line of stdout.
    fn last_line(&self) -> &str {
        self.stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "success: {}\n--- stdout\n{}--- stderr\n{}",
            self.success, self.stdout, self.stderr
        )
    }
}

/// Runs `status-router` with `args` from the crate's directory, feeding `stdin`.
fn status_router(args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_status-router"))
        .args(args)
        .current_dir(xtask::workspace_root().join("host"))
        .env("RUST_LOG", "warn")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run status-router");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(input)
            .expect("write stdin");
    }
    Run::from(child.wait_with_output().expect("wait for status-router"))
}

fn fixture(name: &str) -> PathBuf {
    xtask::workspace_root()
        .join("host/tests/fixtures")
        .join(name)
}

fn read_fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap_or_else(|e| panic!("read fixture {name}: {e}"))
}

/// Writes `bytes` as `name` in `dir` and returns the path as a string.
fn write(dir: &TempDir, name: &str, bytes: &[u8]) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write a temporary file");
    path.to_str().expect("UTF-8 temp path").to_owned()
}

/// Assembles `wat` and writes it as `name` in `dir`.
fn write_wat(dir: &TempDir, name: &str, wat: &str) -> String {
    let bytes = wat::parse_str(wat).unwrap_or_else(|e| panic!("assemble {name}: {e}"));
    write(dir, name, &bytes)
}

/// `policy check` of the component `wat`, expected to fail; returns stderr.
fn check_fails(name: &str, wat: &str) -> String {
    let dir = TempDir::new().expect("temp dir");
    let path = write_wat(&dir, name, wat);
    let stderr = status_router(&["policy", "check", &path], None).failed();
    assert!(
        stderr.contains(&format!("invalid policy {path}")),
        "stderr must name the file: {stderr}"
    );
    stderr
}

/// A component exporting `export` as an instance of one nullary function
/// `decide` (and, with `aggregate`, a second one `aggregate`).
fn component_with_instance(export: &str, aggregate: bool) -> String {
    let aggregate = if aggregate {
        r#"(export "aggregate" (func $f))"#
    } else {
        ""
    };
    format!(
        r#"(component
             (core module $m (func (export "f")))
             (core instance $i (instantiate $m))
             (func $f (canon lift (core func $i "f")))
             (instance $policy (export "decide" (func $f)) {aggregate})
             (export "{export}" (instance $policy)))"#
    )
}
