//! The faults a chaos test injects: a killed server restarts on its port with
//! its data, a paused one answers nothing until resumed, and compaction makes
//! an old resourceVersion unwatchable (410 Gone).

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams, WatchEvent, WatchParams};
use testenv::{ControlPlane, Server};

async fn create(api: &Api<ConfigMap>, name: &str) -> String {
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))
        .expect("a ConfigMap");
    api.create(&PostParams::default(), &cm)
        .await
        .unwrap_or_else(|e| panic!("create {name}: {e}"))
        .metadata
        .resource_version
        .expect("a resourceVersion")
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_paused_and_compacted_servers_behave_as_real_ones() {
    let cp = ControlPlane::start().expect("start a private control plane");
    let wds = cp.wds_client().await.expect("WDS client");
    let api: Api<ConfigMap> = Api::namespaced(wds.clone(), "default");
    let old_rv = create(&api, "before").await;

    // SIGKILL and restart of etcd and of the WDS: data kept, same address.
    for server in [Server::Etcd, Server::Wds] {
        let before: Vec<_> = cp.pids();
        cp.kill(server).expect("kill");
        assert!(
            !cp.pids().iter().any(|(n, _)| n == server.name()),
            "{} still runs",
            server.name()
        );
        let took = cp.restart(server).expect("restart");
        let after = cp.pids();
        assert_eq!(after.len(), before.len(), "{after:?}");
        assert_ne!(before, after, "a new process for {}", server.name());
        eprintln!("{} back in {took:?}", server.name());
        let mut ok = false;
        for _ in 0..100 {
            // Poll: a restarted etcd takes the API server a moment to reconnect.
            if api.get_opt("before").await.is_ok_and(|c| c.is_some()) {
                ok = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(ok, "the ConfigMap survives a restart of {}", server.name());
    }

    // SIGSTOP: no answer (a client timeout), then SIGCONT: answers again.
    cp.pause(Server::Wds).expect("pause");
    let stalled = tokio::time::timeout(Duration::from_secs(2), api.get_opt("before")).await;
    assert!(stalled.is_err(), "a stopped server answered: {stalled:?}");
    cp.resume(Server::Wds).expect("resume");
    assert!(api.get_opt("before").await.expect("answers").is_some());

    // Compaction: a watch from a resourceVersion before it is 410 Gone, once
    // the API server's watch cache no longer holds it (its restart empties it).
    create(&api, "after").await;
    let revision = cp.compact_etcd().expect("compact");
    assert!(
        revision > old_rv.parse::<i64>().unwrap(),
        "{revision} vs {old_rv}"
    );
    cp.restart(Server::Wds).expect("restart the WDS");
    let api: Api<ConfigMap> = Api::namespaced(cp.wds_client().await.unwrap(), "default");
    let mut gone = false;
    for _ in 0..50 {
        match api.watch(&WatchParams::default(), &old_rv).await {
            Ok(stream) => {
                let mut stream = stream.boxed();
                if let Ok(Some(Ok(WatchEvent::Error(e)))) =
                    tokio::time::timeout(Duration::from_secs(5), stream.next()).await
                {
                    assert_eq!(e.code, 410, "{e:?}");
                    gone = true;
                    break;
                }
            }
            Err(kube::Error::Api(e)) if e.code == 410 => {
                gone = true;
                break;
            }
            Err(_) => {}
        }
        // Poll: the restarted server may still be warming its watch cache.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(gone, "a watch from a compacted resourceVersion is 410 Gone");
}
