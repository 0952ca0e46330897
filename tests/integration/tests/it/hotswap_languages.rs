//! A running controller swaps from the Rust default policy to the Python
//! `ready-sum` policy and back, through its policy file, against a real
//! local control plane: the aggregated statuses follow each swap (the
//! minimum of the two WECs' reports under the default, their sum under
//! ready-sum), and no reconcile fails while the 18 MB Python component is
//! compiled off the reconcile path.

use serde_json::json;
use status_router::policy::Limits;
use status_router::policy::active::ActivePolicy;
use std::sync::Arc;

use integration_tests::*;

/// What ready-sum writes for the fleet: wec1 reports 3/3, wec2 3/1.
fn summed() -> serde_json::Value {
    json!({
        "observedGeneration": 1,
        "replicas": 6,
        "updatedReplicas": 6,
        "readyReplicas": 4,
        "availableReplicas": 4,
    })
}

#[async_test]
async fn swapping_to_the_python_policy_and_back_moves_every_status() {
    init_logs();
    let env = Env::new().await;
    let wds_name = testenv::unique_name("wds");
    let fleet = Fleet::create(&env, &wds_name, 6).await;
    let dir = TempDir::new("hotswap-languages");
    let path = dir.path().join("policy.wasm");
    let source = path.display().to_string();
    std::fs::write(&path, component("default")).unwrap();

    // The tests' shared compiled cache: the Python component is compiled
    // once per build, whichever test binary gets there first.
    let validator = new_validator(Some(integration_tests::compiled_cache()), None);
    let active = ActivePolicy::new(initial(&validator, &source, &component("default")));
    let served = Running::serve(&env, &wds_name, active.clone());
    fleet
        .wait_all("the default policy's minimum", |o| {
            o.is_multi_wec(&Fleet::aggregate(1))
        })
        .await;
    let swapper = Arc::new(status_router::hotswap::Swapper::new(
        validator,
        active.clone(),
        None,
    ));
    let _watch = watch_file(&path, swapper).await;

    replace_file(&path, &component("ready-sum"));
    wait_swaps(&active, (1, 0)).await;
    let python = integration_tests::load_policy("ready-sum", Limits::default());
    assert_eq!(
        active.current().policy.info().digest,
        python.policy().info().digest
    );
    fleet
        .wait_all("ready-sum's sum over the WECs", |o| {
            o.is_multi_wec(&summed())
        })
        .await;
    served.assert_no_errors();

    replace_file(&path, &component("default"));
    wait_swaps(&active, (2, 0)).await;
    assert_eq!(
        active.current().policy.info().digest,
        default_policy().info().digest
    );
    assert!(
        active.current().from_cache,
        "the swap back is served from the compiled cache"
    );
    fleet
        .wait_all("the default policy's minimum again", |o| {
            o.is_multi_wec(&Fleet::aggregate(1))
        })
        .await;
    served.assert_no_errors();
    assert!(logged(&["policy swapped in", &source]));

    served.stop().await;
}
