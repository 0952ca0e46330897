//! How soon the controller sees a change made right after an API server came
//! back: its watches must resume (or relist) within the time the rules allow,
//! counted from the moment the server answers `/readyz` again.

use std::time::{Duration, Instant};

use integration_tests::*;
use testenv::{ControlPlane, Server};

/// What a change made once every API server is ready may take to show.
const RECOVERY: Duration = Duration::from_secs(3);

#[async_test]
async fn a_binding_change_after_the_wds_restarts_is_seen_promptly() {
    init_logs();
    // A deadline in seconds: the machine to this test alone.
    let _alone = alone().await;
    let cp = tokio::task::spawn_blocking(ControlPlane::start)
        .await
        .expect("start task")
        .expect("start a private control plane");
    let cp = std::sync::Arc::new(cp);
    let (wds, its) = (
        cp.wds_client().await.expect("WDS client"),
        cp.its_client().await.expect("ITS client"),
    );
    let crds = status_router::kubestellar::crds_yaml();
    testenv::install_crds(&wds, &crds).await.unwrap();
    testenv::install_crds(&its, &crds).await.unwrap();
    let ns = testenv::create_namespace(&wds, "wl").await;
    let wecs = [
        testenv::create_namespace(&its, "wec").await,
        testenv::create_namespace(&its, "wec").await,
    ];
    let web = create_deployment(&wds, &ns, "web").await;
    let binding = "recovery";
    let statuses = [deployment_status(1, 1), deployment_status(2, 2)];
    for (wec, status) in wecs.iter().zip(&statuses) {
        report_deployment(&its, wec, "wds1", binding, (&ns, "web"), Some(status)).await;
    }
    let bind = |wec: &str| {
        binding_spec(
            &[wec],
            vec![deployment_clause(&ns, "web", SINGLETON)],
            vec![],
        )
    };
    put_binding(&wds, binding, bind(&wecs[0])).await;
    let controller = Running::start_with(wds.clone(), its.clone(), "wds1", default_policy(), 2);
    web.wait_singleton(&statuses[0]).await;

    for round in 0..3 {
        cp.kill(Server::Wds).expect("kill the WDS API server");
        // The ITS keeps changing while the WDS is down (its revisions are
        // etcd's too), so the WDS's watch cache starts past our watches.
        let filler: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
            kube::Api::namespaced(its.clone(), "default");
        for i in 0..20 {
            let cm = serde_json::from_value(serde_json::json!({
                "metadata": {"name": format!("filler-{round}-{i}")}
            }))
            .unwrap();
            filler
                .create(&Default::default(), &cm)
                .await
                .expect("write to the ITS");
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let restart = cp.clone();
        tokio::task::spawn_blocking(move || restart.restart(Server::Wds))
            .await
            .expect("restart task")
            .expect("restart the WDS API server");
        let ready = Instant::now();
        let (to, want) = if round % 2 == 0 {
            (&wecs[1], &statuses[1])
        } else {
            (&wecs[0], &statuses[0])
        };
        put_binding(&wds, binding, bind(to)).await;
        web.wait_singleton(want).await;
        let took = ready.elapsed();
        println!("round {round}: the Binding change showed {took:?} after the WDS was ready");
        assert!(took < RECOVERY, "round {round}: {took:?}");
    }
    controller.stop().await;
}
