//! `status-router policy test`: case files, their verdicts and diffs, and malformed files named.

use super::*;

/// The number of cases in a case file, counted without the harness.
fn case_count(path: &str) -> usize {
    let path = xtask::workspace_root().join("host").join(path);
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
