//! Acceptance tests of `status-router policy check|decide|aggregate|test`:
//! the binary is run as an operator would, and each test checks the exit
//! status and what the operator reads on stdout and stderr.
//!
//! Bad components are assembled from WAT into a temporary directory; requests
//! and aggregation inputs are the files under `tests/fixtures/`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::json;
use tempfile::TempDir;

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
        .current_dir(env!("CARGO_MANIFEST_DIR"))
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
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
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

// ---------------------------------------------------------------- check

#[test]
fn check_rejects_random_bytes() {
    let dir = TempDir::new().expect("temp dir");
    // Fixed "random" bytes, so that a failure reproduces.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let bytes: Vec<u8> = (0..256)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    assert!(!bytes.starts_with(b"\0asm"));
    let path = write(&dir, "random.wasm", &bytes);
    let stderr = status_router(&["policy", "check", &path], None).failed();
    assert!(
        stderr.contains("not a WebAssembly component"),
        "stderr: {stderr}"
    );
    assert!(
        stderr.contains(&path),
        "stderr must name the file: {stderr}"
    );
}

#[test]
fn check_rejects_a_missing_file() {
    let dir = TempDir::new().expect("temp dir");
    let path = dir.path().join("absent.wasm");
    let path = path.to_str().unwrap();
    let stderr = status_router(&["policy", "check", path], None).failed();
    assert!(
        stderr.contains(&format!("cannot read policy {path}")),
        "stderr: {stderr}"
    );
}

#[test]
fn check_rejects_a_core_module_and_says_so() {
    let stderr = check_fails("core.wasm", "(module)");
    assert!(
        stderr.contains("not a WebAssembly component")
            && stderr.contains("core WebAssembly module"),
        "stderr: {stderr}"
    );
    // And it says how to make a component of it.
    assert!(stderr.contains("wit-component"), "stderr: {stderr}");
}

#[test]
fn check_rejects_a_component_of_another_world_naming_the_missing_export() {
    let stderr = check_fails(
        "hello.wasm",
        r#"(component
             (core module $m (func (export "f")))
             (core instance $i (instantiate $m))
             (func $f (canon lift (core func $i "f")))
             (export "hello" (func $f)))"#,
    );
    assert!(
        stderr.contains(&format!("missing export {INTERFACE}")),
        "stderr: {stderr}"
    );
    // It also lists what the component does export.
    assert!(stderr.contains("hello"), "stderr: {stderr}");
}

#[test]
fn check_rejects_a_policy_built_against_another_version() {
    let stderr = check_fails(
        "v0.2.wasm",
        &component_with_instance("kubestellar:status-policy/policy@0.2.0", true),
    );
    assert!(
        stderr.contains("kubestellar:status-policy/policy@0.2.0")
            && stderr.contains("built against another version")
            && stderr.contains("this host speaks 0.1.0"),
        "stderr: {stderr}"
    );
}

#[test]
fn check_rejects_the_right_interface_with_the_wrong_function_types() {
    // `decide: func()` and `aggregate: func()`: every name is right, no type is.
    let stderr = check_fails(
        "wrong-types.wasm",
        &component_with_instance(INTERFACE, true),
    );
    assert!(
        stderr.contains(&format!("does not implement {INTERFACE}"))
            && stderr.contains("type mismatch"),
        "stderr: {stderr}"
    );
}

#[test]
fn decide_with_wrongly_typed_exports_fails_without_a_decision() {
    // Loading rejects it (see above), so `decide` fails before any call:
    // an error, never a decision.
    let dir = TempDir::new().expect("temp dir");
    let path = write_wat(
        &dir,
        "wrong-types.wasm",
        &component_with_instance(INTERFACE, true),
    );
    let run = status_router(
        &["policy", "decide", &path],
        Some(&read_fixture("request-both-flags.json")),
    );
    assert!(run.stdout.is_empty(), "no decision: {run}");
    let stderr = run.failed();
    assert!(stderr.contains("type mismatch"), "stderr: {stderr}");
}

#[test]
fn check_rejects_the_right_interface_with_a_missing_function() {
    let stderr = check_fails(
        "no-aggregate.wasm",
        &component_with_instance(INTERFACE, false),
    );
    assert!(
        stderr.contains(&format!("does not implement {INTERFACE}")),
        "stderr: {stderr}"
    );
}

#[test]
fn check_rejects_a_component_that_imports_wasi_naming_the_import() {
    let stderr = check_fails(
        "wasi.wasm",
        r#"(component
             (import "wasi:cli/environment@0.2.0"
               (instance (export "get-arguments" (func (result (list string)))))))"#,
    );
    assert!(
        stderr.contains("wasi:cli/environment@0.2.0") && stderr.contains("must import nothing"),
        "stderr: {stderr}"
    );
}

#[test]
fn check_accepts_the_default_policy_and_describes_it() {
    let stdout = status_router(&["policy", "check", BUILTIN], None).ok();
    let field = |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(key).map(str::trim))
            .unwrap_or_else(|| panic!("no `{key}` line in:\n{stdout}"))
            .to_owned()
    };
    assert_eq!(field("interface:"), INTERFACE);
    assert_eq!(field("version:"), "0.1.0");
    assert_eq!(field("exports:"), "decide, aggregate");
    let digest = field("digest:");
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    assert!(
        hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "{digest}"
    );
    assert!(field("size:").ends_with(" bytes"));
}

// ---------------------------------------------------------------- decide

fn decision(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

#[test]
fn decide_reads_a_json_request_on_stdin() {
    let stdout = status_router(
        &["policy", "decide", BUILTIN],
        Some(&read_fixture("request-both-flags.json")),
    )
    .ok();
    assert_eq!(
        decision(&stdout),
        json!({"handler": "singleton", "wecs": ["wec1"]})
    );
}

#[test]
fn decide_reads_a_yaml_request_from_a_file() {
    let path = fixture("request-multi.yaml");
    let stdout = status_router(
        &[
            "policy",
            "decide",
            BUILTIN,
            "--request",
            path.to_str().unwrap(),
        ],
        None,
    )
    .ok();
    assert_eq!(
        decision(&stdout),
        json!({"handler": "multiWEC", "wecs": ["wec1", "wec2", "wec3"]})
    );
}

#[test]
fn decide_with_no_flag_is_none() {
    let request = br#"{"object": {"version": "v1", "resource": "configmaps", "kind": "ConfigMap", "name": "c"},
                       "singletonWECs": ["wec1"]}"#;
    let stdout = status_router(&["policy", "decide", BUILTIN], Some(request)).ok();
    assert_eq!(decision(&stdout), json!({"handler": "none", "wecs": []}));
}

#[test]
fn decide_refuses_a_request_with_an_unknown_field_and_names_it() {
    let path = fixture("request-bad-field.yaml");
    let path = path.to_str().unwrap();
    let run = status_router(&["policy", "decide", BUILTIN, "--request", path], None);
    assert!(run.stdout.is_empty(), "no decision on a bad request: {run}");
    let stderr = run.failed();
    assert!(
        stderr.contains(path) && stderr.contains("unknown field `wantSingleton`"),
        "stderr: {stderr}"
    );
}

#[test]
fn decide_refuses_a_request_with_a_missing_field_and_names_it() {
    let request =
        br#"{"object": {"version": "v1", "resource": "deployments", "kind": "Deployment"}}"#;
    let stderr = status_router(&["policy", "decide", BUILTIN], Some(request)).failed();
    assert!(
        stderr.contains("standard input") && stderr.contains("missing field `name`"),
        "stderr: {stderr}"
    );
}

#[test]
fn decide_refuses_a_field_of_the_wrong_type_and_names_it() {
    let request = br#"{"object": {"version": "v1", "resource": "deployments", "kind": "Deployment", "name": "web"},
                       "wantSingletonReportedState": "yes"}"#;
    let stderr = status_router(&["policy", "decide", BUILTIN], Some(request)).failed();
    assert!(
        stderr.contains("wantSingletonReportedState"),
        "stderr must name the field: {stderr}"
    );
}

// ---------------------------------------------------------------- aggregate

#[test]
fn aggregate_of_two_deployments_takes_the_minimum() {
    let path = fixture("aggregate-deployments.yaml");
    let stdout = status_router(
        &[
            "policy",
            "aggregate",
            BUILTIN,
            "--request",
            path.to_str().unwrap(),
        ],
        None,
    )
    .ok();
    let status: serde_json::Value = serde_json::from_str(&stdout).expect("JSON status");
    assert_eq!(
        status,
        json!({
            "replicas": 3,
            "readyReplicas": 1,
            "availableReplicas": 1,
            "updatedReplicas": 2,
            "observedGeneration": 6,
        })
    );
}

#[test]
fn aggregate_reads_stdin_and_reports_a_refusal() {
    let input = json!({
        "object": {"group": "apps", "version": "v1", "resource": "deployments",
                   "kind": "Deployment", "namespace": "default", "name": "web"},
        "reported": [
            {"wec": "wec1", "status": {"readyReplicas": 1}},
            {"wec": "wec2", "status": [1, 2]},
        ],
    });
    let run = status_router(
        &["policy", "aggregate", BUILTIN],
        Some(input.to_string().as_bytes()),
    );
    assert!(run.stdout.is_empty(), "no status on a refusal: {run}");
    let stderr = run.failed();
    assert!(
        stderr.contains("cannot aggregate") && stderr.contains("\"wec2\""),
        "stderr: {stderr}"
    );
}

// ---------------------------------------------------------------- test

/// The number of cases in a case file, counted without the harness.
fn case_count(path: &str) -> usize {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let text = std::fs::read_to_string(&path).expect("read the case file");
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("YAML");
    doc["cases"].as_sequence().expect("a `cases` list").len()
}

#[test]
fn test_passes_the_conformance_file() {
    let file = "../tests/policies/conformance.yaml";
    let cases = case_count(file);
    assert!(cases > 20, "the conformance file has {cases} cases");
    let run = status_router(&["policy", "test", BUILTIN, file], None);
    assert_eq!(
        run.last_line(),
        format!("{cases} passed, 0 failed"),
        "{run}"
    );
    assert_eq!(
        run.stdout
            .lines()
            .filter(|l| l.starts_with("ok   "))
            .count(),
        cases,
        "{run}"
    );
    assert!(!run.stdout.contains("FAIL"), "{run}");
    run.ok();
}

#[test]
fn test_reports_a_wrong_expectation_with_a_diff() {
    let file = "../tests/policies/wrong-expectation.yaml";
    let run = status_router(&["policy", "test", BUILTIN, file], None);
    let fail = format!("FAIL {file}: singleton flag, one WEC, expected wrongly as multi-WEC");
    assert!(run.stdout.lines().any(|l| l == fail), "{run}");
    // A unified diff, expected against actual, on the handler.
    for line in [
        "--- expected",
        "+++ actual",
        r#"-  "handler": "multiWEC","#,
        r#"+  "handler": "singleton","#,
    ] {
        assert!(
            run.stdout.lines().any(|l| l == line),
            "no line {line:?}:\n{run}"
        );
    }
    assert_eq!(run.last_line(), "0 passed, 1 failed", "{run}");
    run.failed();
}

#[test]
fn test_counts_passes_and_failures_over_several_files() {
    let good = "../tests/policies/conformance.yaml";
    let bad = "../tests/policies/wrong-expectation.yaml";
    let run = status_router(&["policy", "test", BUILTIN, good, bad], None);
    assert_eq!(
        run.last_line(),
        format!("{} passed, 1 failed", case_count(good)),
        "{run}"
    );
    run.failed();
}

#[test]
fn test_refuses_a_malformed_case_file_naming_the_case_and_the_key() {
    let dir = TempDir::new().expect("temp dir");
    let path = write(
        &dir,
        "typo.yaml",
        br#"cases:
  - name: fine
    request:
      object: {group: apps, version: v1, resource: deployments, kind: Deployment, namespace: default, name: web}
      wantSingletonReportedState: true
      singletonWECs: [wec1]
    expect: {handler: singleton, wecs: [wec1]}
  - name: typo in a key
    request:
      object: {group: apps, version: v1, resource: deployments, kind: Deployment, namespace: default, name: web}
    expected: {handler: none}
"#,
    );
    let run = status_router(&["policy", "test", BUILTIN, &path], None);
    // The file is refused whole: not even the good case runs.
    assert!(!run.stdout.contains("passed"), "{run}");
    let stderr = run.failed();
    assert!(
        stderr.contains(&path)
            && stderr.contains("case 2")
            && stderr.contains("typo in a key")
            && stderr.contains("unknown key `expected`"),
        "stderr: {stderr}"
    );
}

#[test]
fn test_refuses_a_case_with_an_unknown_request_field() {
    let dir = TempDir::new().expect("temp dir");
    let path = write(
        &dir,
        "field.yaml",
        br#"cases:
  - name: misspelled flag
    request:
      object: {group: apps, version: v1, resource: deployments, kind: Deployment, namespace: default, name: web}
      wantMultiWecReportedState: true
    expect: {handler: none}
"#,
    );
    let stderr = status_router(&["policy", "test", BUILTIN, &path], None).failed();
    assert!(
        stderr.contains("case 1")
            && stderr.contains("misspelled flag")
            && stderr.contains("wantMultiWecReportedState"),
        "stderr: {stderr}"
    );
}
