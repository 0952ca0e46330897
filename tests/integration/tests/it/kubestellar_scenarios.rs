//! The controller against a real local control plane (a WDS and an ITS
//! kube-apiserver): Bindings, WorkStatuses and workload objects made the way
//! KubeStellar's binding controller and status agent make them, and the
//! controller running in-process. No mocks.
//!
//! This file: KubeStellar's three status-return scenarios (a singleton
//! Binding over one WEC then none, only the WECs of flagged Bindings counting,
//! a Binding changed while the controller was down), the switch between a
//! singleton and a multi-WEC aggregate, and a change of destinations alone:
//! how a status follows its Bindings.
//!
//! Tests that run a controller on the shared control plane run one at a time
//! (see `common`): a controller decides for every Binding of its WDS.

use integration_tests::*;

/// KubeStellar scenario 1: a singleton Binding selects one WEC: the WDS
/// Deployment gets that WEC's status; the Binding then matches no WEC: cleared.
#[async_test]
async fn singleton_status_follows_one_wec_and_is_cleared_when_the_binding_matches_none() {
    let s = Scene::new("singleton").await;
    let (env, web) = (&s.env, s.web().await);
    let wec = env.wec().await;
    let status = deployment_status(2, 2);
    s.report_web(&wec, Some(&status)).await;
    let controller = Running::start(env, &s.wds_name, default_policy(), 2);

    s.bind_web(&[&wec], SINGLETON).await;
    let o = web.wait_singleton(&status).await;
    assert_eq!(o.status["availableReplicas"], 2);

    s.bind_web(&[], SINGLETON).await;
    web.wait_cleared().await;

    controller.stop().await;
}

/// KubeStellar scenario 2: only qualified WECs count. The object goes to two
/// WECs through a Binding without flags; a singleton Binding names one of
/// them: its status is written. That Binding then names no WEC: cleared.
#[async_test]
async fn only_the_wecs_of_flagged_bindings_count() {
    let plain = Scene::new("plain").await;
    let (env, web) = (&plain.env, plain.web().await);
    let ns = &plain.ns;
    let (wec1, wec2) = (env.wec().await, env.wec().await);
    let singleton = testenv::unique_name("singleton");
    let (status1, status2) = (deployment_status(2, 2), deployment_status(2, 1));
    plain.report_web(&wec1, Some(&status1)).await;
    plain.report_web(&wec2, Some(&status2)).await;
    let controller = Running::start(env, &plain.wds_name, default_policy(), 2);

    plain.bind_web(&[&wec1, &wec2], NO_FLAGS).await;
    let clauses = || vec![deployment_clause(ns, "web", SINGLETON)];
    env.put_binding(&singleton, binding_spec(&[&wec2], clauses(), vec![]))
        .await;
    web.wait_singleton(&status2).await;

    env.put_binding(&singleton, binding_spec(&[], clauses(), vec![]))
        .await;
    web.wait_cleared().await;

    controller.stop().await;
}

/// KubeStellar scenario 3 (eventual consistency): the controller is down
/// while the Binding changes; a new controller clears the stale status.
#[async_test]
async fn a_binding_changed_while_the_controller_was_down_is_caught_up() {
    let s = Scene::new("singleton").await;
    let (env, web) = (&s.env, s.web().await);
    let wec = env.wec().await;
    let status = deployment_status(3, 3);
    s.report_web(&wec, Some(&status)).await;
    s.bind_web(&[&wec], SINGLETON).await;

    let first = Running::start(env, &s.wds_name, default_policy(), 2);
    web.wait_singleton(&status).await;
    first.stop().await;

    // The flag is dropped while no controller runs.
    s.bind_web(&[&wec], NO_FLAGS).await;
    let stale = web.observe().await;
    assert!(stale.is_singleton(&status), "{stale:?}");

    let second = Running::start(env, &s.wds_name, default_policy(), 2);
    web.wait_cleared().await;
    second.stop().await;
}

/// Both flags: one WEC gives a singleton copy; two WECs with different
/// reports give the aggregate (minimum) with the multi-WEC label; back to one
/// WEC gives a singleton again, labels switched.
#[async_test]
async fn both_flags_switch_between_singleton_and_aggregate() {
    let s = Scene::new("both").await;
    let (env, web) = (&s.env, s.web().await);
    let (wec1, wec2) = (env.wec().await, env.wec().await);
    let (status1, status2) = (deployment_status(2, 2), deployment_status(2, 1));
    s.report_web(&wec1, Some(&status1)).await;
    s.report_web(&wec2, Some(&status2)).await;
    let controller = Running::start(env, &s.wds_name, default_policy(), 2);

    s.bind_web(&[&wec1], BOTH).await;
    web.wait_singleton(&status1).await;

    s.bind_web(&[&wec1, &wec2], BOTH).await;
    // The minimum of every counter: replicas 2, ready and available 1.
    let aggregate = deployment_status(2, 1);
    let o = web.wait_multi_wec(&aggregate).await;
    assert_eq!(o.status["readyReplicas"], 1);

    s.bind_web(&[&wec1], BOTH).await;
    web.wait_singleton(&status1).await;

    controller.stop().await;
}

/// A change of destinations alone (same objects, same flags) moves the status
/// to the new WEC's report (KubeStellar misses this one).
#[async_test]
async fn a_destination_change_alone_is_followed() {
    let s = Scene::new("singleton").await;
    let (env, web) = (&s.env, s.web().await);
    let (wec1, wec2) = (env.wec().await, env.wec().await);
    let (status1, status2) = (deployment_status(2, 2), deployment_status(4, 3));
    s.report_web(&wec1, Some(&status1)).await;
    s.report_web(&wec2, Some(&status2)).await;
    let controller = Running::start(env, &s.wds_name, default_policy(), 2);

    s.bind_web(&[&wec1], SINGLETON).await;
    web.wait_singleton(&status1).await;
    s.bind_web(&[&wec2], SINGLETON).await;
    web.wait_singleton(&status2).await;

    controller.stop().await;
}
