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

mod common;

use common::*;

/// KubeStellar scenario 1: a singleton Binding selects one WEC: the WDS
/// Deployment gets that WEC's status; the Binding then matches no WEC: cleared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn singleton_status_follows_one_wec_and_is_cleared_when_the_binding_matches_none() {
    let env = Env::new().await;
    let wds_name = testenv::unique_name("wds");
    let ns = env.namespace().await;
    let wec = env.wec().await;
    let binding = testenv::unique_name("singleton");
    let web = create_deployment(&env.wds, &ns, "web").await;
    let status = deployment_status(2, 2);
    env.report(&wds_name, &wec, &binding, (&ns, "web"), Some(&status))
        .await;
    let controller = Running::start(&env, &wds_name, default_policy(), 2);

    let clauses = || vec![deployment_clause(&ns, "web", SINGLETON)];
    env.put_binding(&binding, binding_spec(&[&wec], clauses(), vec![]))
        .await;
    let o = web.wait_singleton(&status).await;
    assert_eq!(o.status["availableReplicas"], 2);

    env.put_binding(&binding, binding_spec(&[], clauses(), vec![]))
        .await;
    web.wait_cleared().await;

    controller.stop().await;
    env.cleanup().await;
}

/// KubeStellar scenario 2: only qualified WECs count. The object goes to two
/// WECs through a Binding without flags; a singleton Binding names one of
/// them: its status is written. That Binding then names no WEC: cleared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_wecs_of_flagged_bindings_count() {
    let env = Env::new().await;
    let wds_name = testenv::unique_name("wds");
    let ns = env.namespace().await;
    let (wec1, wec2) = (env.wec().await, env.wec().await);
    let plain = testenv::unique_name("plain");
    let singleton = testenv::unique_name("singleton");
    let web = create_deployment(&env.wds, &ns, "web").await;
    let (status1, status2) = (deployment_status(2, 2), deployment_status(2, 1));
    env.report(&wds_name, &wec1, &plain, (&ns, "web"), Some(&status1))
        .await;
    env.report(&wds_name, &wec2, &plain, (&ns, "web"), Some(&status2))
        .await;
    let controller = Running::start(&env, &wds_name, default_policy(), 2);

    let plain_clauses = vec![deployment_clause(&ns, "web", NO_FLAGS)];
    env.put_binding(&plain, binding_spec(&[&wec1, &wec2], plain_clauses, vec![]))
        .await;
    let clauses = || vec![deployment_clause(&ns, "web", SINGLETON)];
    env.put_binding(&singleton, binding_spec(&[&wec2], clauses(), vec![]))
        .await;
    web.wait_singleton(&status2).await;

    env.put_binding(&singleton, binding_spec(&[], clauses(), vec![]))
        .await;
    web.wait_cleared().await;

    controller.stop().await;
    env.cleanup().await;
}

/// KubeStellar scenario 3 (eventual consistency): the controller is down
/// while the Binding changes; a new controller clears the stale status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binding_changed_while_the_controller_was_down_is_caught_up() {
    let env = Env::new().await;
    let wds_name = testenv::unique_name("wds");
    let ns = env.namespace().await;
    let wec = env.wec().await;
    let binding = testenv::unique_name("singleton");
    let web = create_deployment(&env.wds, &ns, "web").await;
    let status = deployment_status(3, 3);
    env.report(&wds_name, &wec, &binding, (&ns, "web"), Some(&status))
        .await;
    env.put_binding(
        &binding,
        binding_spec(
            &[&wec],
            vec![deployment_clause(&ns, "web", SINGLETON)],
            vec![],
        ),
    )
    .await;

    let first = Running::start(&env, &wds_name, default_policy(), 2);
    web.wait_singleton(&status).await;
    first.stop().await;

    // The flag is dropped while no controller runs.
    env.put_binding(
        &binding,
        binding_spec(
            &[&wec],
            vec![deployment_clause(&ns, "web", NO_FLAGS)],
            vec![],
        ),
    )
    .await;
    let stale = web.observe().await;
    assert!(stale.is_singleton(&status), "{stale:?}");

    let second = Running::start(&env, &wds_name, default_policy(), 2);
    web.wait_cleared().await;
    second.stop().await;
    env.cleanup().await;
}

/// Both flags: one WEC gives a singleton copy; two WECs with different
/// reports give the aggregate (minimum) with the multi-WEC label; back to one
/// WEC gives a singleton again, labels switched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_flags_switch_between_singleton_and_aggregate() {
    let env = Env::new().await;
    let wds_name = testenv::unique_name("wds");
    let ns = env.namespace().await;
    let (wec1, wec2) = (env.wec().await, env.wec().await);
    let binding = testenv::unique_name("both");
    let web = create_deployment(&env.wds, &ns, "web").await;
    let (status1, status2) = (deployment_status(2, 2), deployment_status(2, 1));
    env.report(&wds_name, &wec1, &binding, (&ns, "web"), Some(&status1))
        .await;
    env.report(&wds_name, &wec2, &binding, (&ns, "web"), Some(&status2))
        .await;
    let controller = Running::start(&env, &wds_name, default_policy(), 2);
    let clauses = || vec![deployment_clause(&ns, "web", BOTH)];

    env.put_binding(&binding, binding_spec(&[&wec1], clauses(), vec![]))
        .await;
    web.wait_singleton(&status1).await;

    env.put_binding(&binding, binding_spec(&[&wec1, &wec2], clauses(), vec![]))
        .await;
    // The minimum of every counter: replicas 2, ready and available 1.
    let aggregate = deployment_status(2, 1);
    let o = web.wait_multi_wec(&aggregate).await;
    assert_eq!(o.status["readyReplicas"], 1);

    env.put_binding(&binding, binding_spec(&[&wec1], clauses(), vec![]))
        .await;
    web.wait_singleton(&status1).await;

    controller.stop().await;
    env.cleanup().await;
}

/// A change of destinations alone (same objects, same flags) moves the status
/// to the new WEC's report (KubeStellar misses this one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_change_alone_is_followed() {
    let env = Env::new().await;
    let wds_name = testenv::unique_name("wds");
    let ns = env.namespace().await;
    let (wec1, wec2) = (env.wec().await, env.wec().await);
    let binding = testenv::unique_name("singleton");
    let web = create_deployment(&env.wds, &ns, "web").await;
    let (status1, status2) = (deployment_status(2, 2), deployment_status(4, 3));
    env.report(&wds_name, &wec1, &binding, (&ns, "web"), Some(&status1))
        .await;
    env.report(&wds_name, &wec2, &binding, (&ns, "web"), Some(&status2))
        .await;
    let controller = Running::start(&env, &wds_name, default_policy(), 2);
    let clauses = || vec![deployment_clause(&ns, "web", SINGLETON)];

    env.put_binding(&binding, binding_spec(&[&wec1], clauses(), vec![]))
        .await;
    web.wait_singleton(&status1).await;
    env.put_binding(&binding, binding_spec(&[&wec2], clauses(), vec![]))
        .await;
    web.wait_singleton(&status2).await;

    controller.stop().await;
    env.cleanup().await;
}
