//! `status-router policy decide`: requests from stdin or a file, and bad requests named.

use super::*;
use serde_json::json;

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
