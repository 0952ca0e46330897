//! `status-router policy check`: what it accepts, and each rejection with its reason.

use super::*;

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
    let toolchain = field("toolchain:");
    assert!(toolchain.contains("language: Rust"), "{toolchain}");
    assert!(
        toolchain.contains("processed-by: wit-component"),
        "{toolchain}"
    );
    assert_eq!(field("imports:"), "none");
}
