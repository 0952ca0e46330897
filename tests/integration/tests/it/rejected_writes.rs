//! A status the WDS API server refuses: a WEC reports a Deployment status
//! that the WDS's validation rejects (more ready replicas than replicas; a
//! WorkStatus's status is free-form, so the ITS took it). The controller
//! must say so on the object, keep retrying, and write the status once the
//! WEC reports one the server accepts.
//!
//! Tests that run a controller on the shared control plane run one at a time
//! (see `common`).

use integration_tests::*;
use serde_json::json;

#[async_test]
async fn a_refused_status_leaves_an_event_and_is_retried_until_a_valid_one_arrives() {
    let s = Scene::new("singleton").await;
    let (env, ns, web) = (&s.env, &s.ns, &s.web().await);
    let wec = env.wec().await;
    let invalid = json!({"replicas": 1, "readyReplicas": 3, "availableReplicas": 3});
    s.report_web(&wec, Some(&invalid)).await;
    let controller = Running::start(env, &s.wds_name, default_policy(), 2);
    s.bind_web(&[&wec], SINGLETON).await;

    let event = wait_event(
        &env.wds,
        ("Deployment", ns, "web"),
        "StatusWriteRejected",
        "Warning",
    )
    .await;
    let note = event.note.unwrap_or_default();
    assert!(note.contains("422"), "the server's code: {note}");
    assert!(
        note.contains("readyReplicas"),
        "the server's reason: {note}"
    );
    // The Event is recorded inside the reconcile, the error counted when it
    // returns: the count may trail the Event by a moment.
    wait_for("a counted reconcile error", TIMEOUT, || async {
        match controller.metrics().reconcile_errors() {
            0 => Err("reconcile_errors = 0".to_string()),
            _ => Ok(()),
        }
    })
    .await;
    let o = web.observe().await;
    assert_eq!(
        o.status,
        json!({}),
        "nothing of the refused status is written"
    );
    assert!(o.singleton, "the label goes on before the status: {o:?}");

    let valid = deployment_status(1, 1);
    set_report_status(&env.its, &wec, &s.web_report(), Some(&valid)).await;
    web.wait_singleton(&valid).await;

    controller.stop().await;
}
