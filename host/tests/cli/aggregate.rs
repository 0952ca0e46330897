//! `status-router policy aggregate`: an aggregated status, and a policy's refusal.

use super::*;
use serde_json::json;

#[test]
fn aggregate_of_two_deployments_follows_kubestellar() {
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
            "unavailableReplicas": 0,
            "conditions": [],
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
