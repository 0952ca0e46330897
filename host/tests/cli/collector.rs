//! `status-router collector test`: the documented example passes, an unmet
//! expectation fails with both results shown, and an invalid collector or a
//! malformed case file is refused saying what is wrong.

use tempfile::TempDir;

use super::{status_router, write};

const EXAMPLE: [&str; 4] = [
    "collector",
    "test",
    "../docs/examples/statuscollector.yaml",
    "../docs/examples/collector-cases.yaml",
];

#[test]
fn the_documented_example_passes_and_prints_the_results() {
    let out = status_router(&EXAMPLE, None).ok();
    assert!(out.contains("ok   both WECs available"), "{out}");
    assert!(out.contains("ok   one WEC not yet available"), "{out}");
    assert!(out.contains("---- no WEC returned anything"), "{out}");
    assert!(out.contains(r#""float": "2""#), "{out}");
    assert!(out.contains("No such key: availableReplicas"), "{out}");
}

#[test]
fn an_unmet_expectation_fails() {
    let dir = TempDir::new().unwrap();
    let cases = write(
        &dir,
        "cases.yaml",
        br#"cases:
  - name: wrong sum
    object: {spec: {replicas: 1}}
    wecs: [{name: c1, status: {availableReplicas: 1}}]
    expect: {columnNames: [wecs, available], rows: [{columns: [{type: Number, float: "1"}, {type: Number, float: "7"}]}]}
"#,
    );
    let run = status_router(
        &[
            "collector",
            "test",
            "../docs/examples/statuscollector.yaml",
            &cases,
        ],
        None,
    );
    assert!(!run.success, "{run}");
    assert!(run.stdout.contains("FAIL wrong sum"), "{run}");
    assert!(
        run.stdout.contains(r#""float": "7""#),
        "the expectation is shown: {run}"
    );
    assert!(run.stdout.contains("1 case(s) failed"), "{run}");
}

#[test]
fn an_invalid_collector_and_a_malformed_case_file_are_refused() {
    let dir = TempDir::new().unwrap();
    let bad = write(
        &dir,
        "bad.yaml",
        br#"apiVersion: control.kubestellar.io/v1alpha1
kind: StatusCollector
metadata: {name: bad}
spec: {select: [{name: x, def: "undefinedVar + 1"}], combinedFields: [{name: n, type: COUNT}], limit: 1}
"#,
    );
    let stderr = status_router(
        &[
            "collector",
            "test",
            &bad,
            "../docs/examples/collector-cases.yaml",
        ],
        None,
    )
    .failed();
    assert!(
        stderr.contains("StatusCollector bad is invalid"),
        "{stderr}"
    );
    assert!(stderr.contains("undefinedVar"), "{stderr}");
    assert!(stderr.contains("select must be empty"), "{stderr}");

    let typo = write(&dir, "typo.yaml", b"cases: [{name: a, wec: []}]\n");
    let stderr = status_router(
        &[
            "collector",
            "test",
            "../docs/examples/statuscollector.yaml",
            &typo,
        ],
        None,
    )
    .failed();
    assert!(
        stderr.contains("typo.yaml") && stderr.contains("wec"),
        "{stderr}"
    );
}
