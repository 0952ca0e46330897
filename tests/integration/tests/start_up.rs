//! The start of a controller on a private control plane: an API server that
//! is down or restarting (a pod restarted during a control-plane outage) is
//! waited for, so the controller starts when it is back instead of exiting;
//! a definite answer (a CRD that is not served) still fails at once.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use status_router::controller::{Config, Controller, StartError};
use testenv::{ControlPlane, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
