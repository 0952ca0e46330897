//! `status-router policy new --lang rust|python|js NAME DIR` writes a
//! skeleton that builds (`xtask::lang::build_policy_dir`, what `cargo xtask
//! build-policy` runs) and that `policy test` accepts as it is, in each
//! language; and refuses a bad name or a directory in use.

use super::*;

fn new_builds_and_passes(lang: &str, name: &str) {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join(name);
    let dir_arg = dir.to_str().unwrap();
    let out = status_router(&["policy", "new", "--lang", lang, name, dir_arg], None).ok();
    assert!(out.contains(&format!("policy {name}")), "{out}");
    for file in ["README.md", "cases.yaml", "wit/status-policy.wit"] {
        assert!(dir.join(file).is_file(), "{lang}: no {file}");
    }
    let wasm = dir.join(format!("{name}.wasm"));
    xtask::lang::build_policy_dir(&dir, &wasm).unwrap_or_else(|e| panic!("{lang}: {e}"));
    let wasm_arg = wasm.to_str().unwrap();
    let check = status_router(&["policy", "check", wasm_arg], None).ok();
    assert!(check.contains("imports:   none"), "{check}");
    let cases = dir.join("cases.yaml");
    let run = status_router(
        &[
            "policy",
            "test",
            "--policy-deadline-ms",
            "2000",
            wasm_arg,
            cases.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(run.last_line(), "5 passed, 0 failed", "{lang}:\n{run}");
    assert!(run.success, "{lang}:\n{run}");
}

#[test]
fn a_new_rust_policy_builds_and_passes_its_cases() {
    new_builds_and_passes("rust", "my-rust-policy");
}

#[test]
fn a_new_python_policy_builds_and_passes_its_cases() {
    new_builds_and_passes("python", "my-python-policy");
}

#[test]
fn a_new_js_policy_builds_and_passes_its_cases() {
    new_builds_and_passes("js", "my-js-policy");
}

#[test]
fn new_refuses_a_bad_name_and_a_directory_in_use() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("x");
    let err = status_router(
        &[
            "policy",
            "new",
            "--lang",
            "js",
            "Bad_Name",
            dir.to_str().unwrap(),
        ],
        None,
    )
    .failed();
    assert!(err.contains("invalid policy name \"Bad_Name\""), "{err}");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("keep"), "mine").unwrap();
    let err = status_router(
        &[
            "policy",
            "new",
            "--lang",
            "js",
            "ok-name",
            dir.to_str().unwrap(),
        ],
        None,
    )
    .failed();
    assert!(err.contains("is not empty"), "{err}");
    assert_eq!(std::fs::read_to_string(dir.join("keep")).unwrap(), "mine");
}
