//! The start of a controller on a private control plane: an API server that
//! is down or restarting (a pod restarted during a control-plane outage) is
//! waited for, so the controller starts when it is back instead of exiting;
//! a definite answer (a CRD that is not served) still fails at once. And a
//! stopped controller leaves none of its tasks behind.

use std::sync::Arc;
use std::time::{Duration, Instant};

use integration_tests::*;
use status_router::controller::{Config, Controller, StartError};
use status_router::kubestellar::StatusCollector;
use testenv::{ControlPlane, Server};

#[async_test]
async fn the_start_waits_for_an_api_server_that_is_down_and_fails_at_once_without_crds() {
    init_logs();
    let cp = tokio::task::spawn_blocking(ControlPlane::start)
        .await
        .expect("start task")
        .expect("start a private control plane");
    let cp = Arc::new(cp);
    let (wds, its) = (
        cp.wds_client().await.expect("WDS client"),
        cp.its_client().await.expect("ITS client"),
    );
    let controller = || {
        let config = Config {
            wds_name: "start-up".into(),
            workers: 1,
        };
        Controller::new(wds.clone(), its.clone(), default_policy(), config)
    };
    let crds = status_router::kubestellar::crds_yaml();
    testenv::install_crds(&wds, &crds)
        .await
        .expect("install our CRDs in the WDS");

    // A definite answer is not waited on: the ITS does not serve WorkStatuses.
    let asked = Instant::now();
    match controller().preflight().await {
        Err(StartError::MissingCrd { space: "ITS", .. }) => {}
        other => panic!("expected the ITS's missing CRD, got {other:?}"),
    }
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "a missing CRD fails at once, not after the wait for a server: {:?}",
        asked.elapsed()
    );
    testenv::install_crds(&its, &crds)
        .await
        .expect("install our CRDs in the ITS");

    // The WDS is down when the controller starts: it waits, and passes once
    // the WDS is back.
    cp.kill(Server::Wds).expect("kill the WDS API server");
    let starting = controller();
    let check = tokio::spawn(async move { starting.preflight().await });
    tokio::time::sleep(Duration::from_secs(3)).await; // the outage, seen from the controller
    assert!(
        !check.is_finished(),
        "the start waits while the WDS is down: {:?}",
        check.await
    );
    let back = cp.clone();
    tokio::task::spawn_blocking(move || back.restart(Server::Wds))
        .await
        .expect("restart task")
        .expect("restart the WDS API server");
    tokio::time::timeout(Duration::from_secs(30), check)
        .await
        .expect("the start goes on within seconds of the WDS's return")
        .expect("the preflight task")
        .expect("the preflight passes once the WDS is back");
}

/// Fifty controllers, one after the other, each started until it has
/// written a StatusCollector's status and then stopped: every task a
/// controller spawned (watches, workers, the queue-fed writers) ends with
/// it, so the runtime's live tasks come back to where they were after the
/// first one (which also warmed the clients' connection pools).
#[async_test]
async fn fifty_controllers_started_and_stopped_leave_no_task_behind() {
    init_logs();
    let cp = tokio::task::spawn_blocking(ControlPlane::start)
        .await
        .expect("start task")
        .expect("start a private control plane");
    let (wds, its) = (
        cp.wds_client().await.expect("WDS client"),
        cp.its_client().await.expect("ITS client"),
    );
    let crds = status_router::kubestellar::crds_yaml();
    testenv::install_crds(&wds, &crds)
        .await
        .expect("install our CRDs in the WDS");
    testenv::install_crds(&its, &crds)
        .await
        .expect("install our CRDs in the ITS");
    let collectors: kube::Api<StatusCollector> = kube::Api::all(wds.clone());
    let collector = |limit: i64| -> StatusCollector {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "control.kubestellar.io/v1alpha1",
            "kind": "StatusCollector",
            "metadata": {"name": "count"},
            "spec": {"combinedFields": [{"name": "n", "type": "COUNT"}], "limit": limit},
        }))
        .expect("a StatusCollector")
    };
    collectors
        .create(&Default::default(), &collector(1))
        .await
        .expect("create the StatusCollector");

    let tasks = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    let mut after_first = 0;
    for round in 1..=50_i64 {
        // A new generation each round: this round's controller must write it.
        let generation = if round == 1 {
            1
        } else {
            collectors
                .replace("count", &Default::default(), &{
                    let mut c = collectors.get("count").await.expect("read the collector");
                    c.spec = collector(round).spec;
                    c
                })
                .await
                .expect("change the StatusCollector")
                .metadata
                .generation
                .expect("a generation")
        };
        let controller = Controller::new(
            wds.clone(),
            its.clone(),
            default_policy(),
            Config {
                wds_name: "tasks".into(),
                workers: 2,
            },
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(controller.run(async move {
            let _ = stopped.await;
        }));
        wait_for(
            &format!("round {round}: the controller writes the collector's status"),
            TIMEOUT,
            || async {
                let c = collectors
                    .get_status("count")
                    .await
                    .map_err(|e| e.to_string())?;
                match c.status {
                    Some(s) if s.observed_generation == generation => Ok(()),
                    other => Err(format!("status {other:?}, generation {generation}")),
                }
            },
        )
        .await;
        stop.send(()).expect("the controller is running");
        tokio::time::timeout(TIMEOUT, running)
            .await
            .expect("the controller stops in time")
            .expect("the controller task does not panic")
            .expect("the controller ran");
        if round == 1 {
            after_first = settled_tasks(tasks, None).await;
            println!("live tasks after the first controller: {after_first}");
        }
    }
    let after_fifty = settled_tasks(tasks, Some(after_first)).await;
    println!("live tasks after fifty controllers: {after_fifty} (after the first: {after_first})");
    assert!(
        after_fifty <= after_first,
        "{} tasks outlived their controllers: {after_fifty} live after fifty, {after_first} after the first",
        after_fifty - after_first
    );
}

/// The number of live tasks once it is down to `target`, or, without one,
/// once it has not changed for two seconds. Tasks that end with a controller
/// end within milliseconds, but the clients' pools keep an idle connection
/// (and its task) for up to hyper's 90 s idle timeout, and a busy machine may
/// have opened one more than the first round did: so at most 100 s later.
async fn settled_tasks(count: impl Fn() -> usize, target: Option<usize>) -> usize {
    let start = Instant::now();
    let mut last = (count(), Instant::now());
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = count();
        if target.is_some_and(|t| now <= t) || start.elapsed() > Duration::from_secs(100) {
            return now;
        }
        if now != last.0 {
            last = (now, Instant::now());
        } else if target.is_none() && last.1.elapsed() > Duration::from_secs(2) {
            return now;
        }
    }
}
