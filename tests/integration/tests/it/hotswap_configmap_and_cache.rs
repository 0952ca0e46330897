//! Hot-swapping the policy of a running controller, against a real local
//! control plane: a policy ConfigMap updated (a good update swaps, a bad one
//! is rejected and recorded as an Event), and a swap back served from the
//! compiled cache.
//!
//! The tests that run a controller take `integration_tests::Env`'s lock (a controller
//! decides for every Binding of the WDS); the others only need a temp dir.
//! The helpers shared with the other hot-swap tests are in `integration_tests::swap`
//! and `integration_tests::fleet`.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::events::{Recorder, Reporter};
use status_router::hotswap::{self, Swapper};
use status_router::policy::active::ActivePolicy;
use status_router::policy::{
    CompiledCache, Decision, ObjectDoc, PolicyInstance, Request, RequestDoc,
};

use integration_tests::*;

/// The policy in a ConfigMap's `binaryData`, watched through the API: an
/// update to `strict-singleton` clears every status; an update to bytes that
/// are not WebAssembly is rejected, changes nothing, and is recorded as a
/// `PolicyRejected` Event on the ConfigMap.
#[async_test]
async fn a_configmap_update_swaps_and_a_bad_one_is_recorded_as_an_event() {
    init_logs();
    let env = Env::new().await;
    let wds_name = testenv::unique_name("wds");
    let fleet = Fleet::create(&env, &wds_name, 8).await;
    let ns = fleet.ns.clone();
    let name = testenv::unique_name("policy");
    let configmaps: Api<ConfigMap> = Api::namespaced(env.wds.clone(), &ns);
    let put = |bytes: Vec<u8>| {
        let (configmaps, name) = (&configmaps, &name);
        async move {
            let data = BTreeMap::from([(hotswap::configmap::KEY.to_string(), ByteString(bytes))]);
            match configmaps.get_opt(name).await.expect("read the ConfigMap") {
                None => {
                    let cm = ConfigMap {
                        metadata: ObjectMeta {
                            name: Some(name.clone()),
                            ..Default::default()
                        },
                        binary_data: Some(data),
                        ..Default::default()
                    };
                    configmaps.create(&PostParams::default(), &cm).await
                }
                Some(mut cm) => {
                    cm.binary_data = Some(data);
                    configmaps.replace(name, &PostParams::default(), &cm).await
                }
            }
            .expect("write the policy ConfigMap");
        }
    };
    put(component("default")).await;
    let source = format!("configmap/{ns}/{name}");

    let validator = new_validator(None, None);
    let active = ActivePolicy::new(initial(&validator, &source, &component("default")));
    let served = Running::serve(&env, &wds_name, active.clone());
    fleet
        .wait_all("the default policy's aggregate", |o| {
            o.is_multi_wec(&Fleet::aggregate(1))
        })
        .await;
    let recorder = Recorder::new(
        env.wds.clone(),
        Reporter {
            controller: "status-router-hotswap-test".into(),
            instance: None,
        },
    );
    let swapper = Arc::new(Swapper::new(validator, active.clone(), Some(recorder)));
    let _watch = Task(tokio::spawn(hotswap::configmap::watch(
        env.wds.clone(),
        ns.clone(),
        name.clone(),
        swapper,
    )));

    put(component("strict-singleton")).await;
    wait_swaps(&active, (1, 0)).await;
    assert_eq!(active.current().source, source);
    assert_eq!(
        active.current().policy.info().digest,
        digest("strict-singleton")
    );
    fleet
        .wait_all("cleared by strict-singleton", Observed::is_cleared)
        .await;
    wait_event(
        &env.wds,
        ("ConfigMap", &ns, &name),
        "PolicySwapped",
        "Normal",
    )
    .await;
    served.assert_no_errors();

    let before = fleet.resource_versions().await;
    put(random_bytes(2048)).await;
    wait_swaps(&active, (1, 1)).await;
    let reason = active.status()["lastRejection"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        reason.contains(&source) && reason.contains("not a WebAssembly component"),
        "{reason}"
    );
    let event = wait_event(
        &env.wds,
        ("ConfigMap", &ns, &name),
        "PolicyRejected",
        "Warning",
    )
    .await;
    let note = event.note.unwrap_or_default();
    assert!(note.contains("not a WebAssembly component"), "{note}");
    fleet.assert_unchanged(&before, &active, (1, 1)).await;
    assert_eq!(
        active.current().policy.info().digest,
        digest("strict-singleton")
    );
    served.assert_no_errors();

    served.stop().await;
}

/// default → strict-singleton → default: the module used before is served
/// from the compiled cache the second time, and decides as it should.
#[async_test]
async fn a_swap_back_is_served_from_the_compiled_cache() {
    init_logs();
    let dir = TempDir::new("hotswap-cache");
    let cache_dir = TempDir::new("hotswap-compiled");
    let path = dir.path().join("policy.wasm");
    let source = path.display().to_string();
    std::fs::write(&path, component("default")).unwrap();

    let validator = new_validator(Some(CompiledCache::new(cache_dir.path())), None);
    let first = initial(&validator, &source, &component("default"));
    assert!(!first.from_cache, "a fresh cache is empty");
    let active = ActivePolicy::new(first);
    let swapper = Arc::new(Swapper::new(validator, active.clone(), None));
    let _watch = watch_file(&path, swapper).await;

    replace_file(&path, &component("strict-singleton"));
    wait_swaps(&active, (1, 0)).await;
    assert_eq!(
        active.current().policy.info().digest,
        digest("strict-singleton")
    );
    assert!(!active.current().from_cache);
    assert_eq!(active.status()["fromCompiledCache"], false);

    replace_file(&path, &component("default"));
    wait_swaps(&active, (2, 0)).await;
    let current = active.current();
    assert_eq!(current.policy.info().digest, digest("default"));
    assert!(current.from_cache, "the swap back is served from the cache");
    assert_eq!(active.status()["fromCompiledCache"], true);
    assert!(logged(&["policy swapped in", &source, "from_cache=true"]));

    // The cached module decides as the default policy does.
    let doc = RequestDoc::new(ObjectDoc::deployment("default", "web"))
        .singleton(["wec1"])
        .multi_wec(["wec1", "wec2"]);
    let decision = PolicyInstance::new(current.policy.clone())
        .decide(&Request::from(&doc))
        .expect("the cached module decides");
    assert_eq!(
        decision,
        Decision::MultiWec(vec!["wec1".into(), "wec2".into()])
    );
}
