//! Hot-swapping the policy of a running controller, against a real local
//! control plane, through a policy file: the file replaced by rename while
//! reports keep changing, a Kubernetes-style `..data` symlink swap, and
//! modules that must be rejected (not WebAssembly, a failing embedded
//! self-test, a sha256 pin that does not match).
//!
//! The tests that run a controller take `integration_tests::Env`'s lock (a controller
//! decides for every Binding of the WDS); the others only need a temp dir.
//! The helpers shared with the other hot-swap tests are in `integration_tests::swap`
//! and `integration_tests::fleet`.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};

use serde_json::Value;
use status_router::hotswap::Swapper;
use status_router::policy::active::ActivePolicy;

use integration_tests::*;

/// While the controller serves 24 aggregated Deployments and wec2's reports
/// keep changing, the policy file is replaced (temp file + rename) by
/// `strict-singleton`, which decides `none` for two WECs: every status is
/// cleared. Then by `label-driven`, which (without labels) aggregates as the
/// default does: every aggregate comes back. No reconcile fails, each swap is
/// counted and logged.
#[async_test]
async fn replacing_the_policy_file_moves_every_status_to_the_new_policy() {
    init_logs();
    let env = Env::new().await;
    let wds_name = testenv::unique_name("wds");
    let fleet = Fleet::create(&env, &wds_name, 24).await;
    let dir = TempDir::new("hotswap-file");
    let path = dir.path().join("policy.wasm");
    let source = path.display().to_string();
    std::fs::write(&path, component("default")).unwrap();

    let validator = new_validator(None, None);
    let active = ActivePolicy::new(initial(&validator, &source, &component("default")));
    let served = Running::serve(&env, &wds_name, active.clone());
    fleet
        .wait_all("the default policy's aggregate", |o| {
            o.is_multi_wec(&Fleet::aggregate(1))
        })
        .await;
    let swapper = Arc::new(Swapper::new(validator, active.clone(), None));
    let _watch = watch_file(&path, swapper).await;

    // wec2's reports change all along, so reconciles are running when the
    // module changes under the workers.
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicU64::new(0));
    let churn = {
        let (stop, rounds, its) = (stop.clone(), rounds.clone(), env.its.clone());
        let fleet = fleet.clone();
        tokio::spawn(async move {
            let mut ready = 1;
            while !stop.load(Relaxed) {
                ready = 3 - ready;
                fleet.report2_all(&its, ready).await;
                rounds.fetch_add(1, Relaxed);
            }
            // Settle on a known report.
            fleet.report2_all(&its, 1).await;
        })
    };
    wait_for("a round of report changes", TIMEOUT, || async {
        match rounds.load(Relaxed) {
            0 => Err("none yet".into()),
            _ => Ok(()),
        }
    })
    .await;

    replace_file(&path, &component("strict-singleton"));
    wait_swaps(&active, (1, 0)).await;
    stop.store(true, Relaxed);
    churn.await.expect("the report changes ran");
    let current = active.current();
    assert_eq!(current.policy.info().digest, digest("strict-singleton"));
    assert_eq!(current.source, source);
    assert!(
        logged(&["policy swapped in", &source, &digest("strict-singleton")]),
        "the swap is logged"
    );
    fleet
        .wait_all("cleared by strict-singleton", Observed::is_cleared)
        .await;
    served.assert_no_errors();

    replace_file(&path, &component("label-driven"));
    wait_swaps(&active, (2, 0)).await;
    assert_eq!(
        active.current().policy.info().digest,
        digest("label-driven")
    );
    fleet
        .wait_all("label-driven's aggregate (no handler label)", |o| {
            o.is_multi_wec(&Fleet::aggregate(1))
        })
        .await;
    served.assert_no_errors();
    assert!(logged(&[
        "policy swapped in",
        &source,
        &digest("label-driven")
    ]));
    assert_eq!(active.status()["swapsAccepted"], 2);
    assert_eq!(active.status()["lastRejection"], Value::Null);

    served.stop().await;
}

/// A mounted ConfigMap is updated by the kubelet through symlinks:
/// `policy.wasm -> ..data/policy.wasm`, `..data -> ..<timestamp>`; an update
/// writes a new timestamped dir, points `..data_tmp` at it and renames
/// `..data_tmp` over `..data`. Each such swap activates the new module.
#[async_test]
async fn a_kubernetes_data_symlink_swap_activates_the_new_module() {
    init_logs();
    let dir = TempDir::new("hotswap-symlink");
    let root = dir.path();
    let publish = |stamp: &str, bytes: &[u8]| {
        let data = root.join(stamp);
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join("policy.wasm"), bytes).unwrap();
        let tmp = root.join("..data_tmp");
        std::os::unix::fs::symlink(stamp, &tmp).unwrap();
        std::fs::rename(&tmp, root.join("..data")).unwrap();
    };
    let first = "..2026_01_02_03_04_05.000000001";
    publish(first, &component("default"));
    std::os::unix::fs::symlink("..data/policy.wasm", root.join("policy.wasm")).unwrap();
    let path = root.join("policy.wasm");
    let source = path.display().to_string();

    let validator = new_validator(None, None);
    let active = ActivePolicy::new(initial(&validator, &source, &component("default")));
    let swapper = Arc::new(Swapper::new(validator, active.clone(), None));
    let _watch = watch_file(&path, swapper).await;

    let second = "..2026_01_02_03_04_06.000000002";
    publish(second, &component("strict-singleton"));
    // The kubelet then removes the old dir: an event with nothing new.
    std::fs::remove_dir_all(root.join(first)).unwrap();
    wait_swaps(&active, (1, 0)).await;
    assert_eq!(
        active.current().policy.info().digest,
        digest("strict-singleton")
    );

    let third = "..2026_01_02_03_04_07.000000003";
    publish(third, &component("label-driven"));
    std::fs::remove_dir_all(root.join(second)).unwrap();
    wait_swaps(&active, (2, 0)).await;
    assert_eq!(
        active.current().policy.info().digest,
        digest("label-driven")
    );
    assert_eq!(active.current().source, source);
}

/// A module that is not WebAssembly, one whose embedded self-test fails (it
/// traps in every call) and a valid one that is not the pinned sha256 are
/// each rejected: counted, named in `lastRejection`, and no status changes.
#[async_test]
async fn rejected_modules_change_nothing() {
    init_logs();
    let env = Env::new().await;
    let wds_name = testenv::unique_name("wds");
    let fleet = Fleet::create(&env, &wds_name, 8).await;
    let (dir, pinned_dir) = (
        TempDir::new("hotswap-reject"),
        TempDir::new("hotswap-pinned"),
    );
    let path = dir.path().join("policy.wasm");
    let pinned_path = pinned_dir.path().join("policy.wasm");
    let default = component("default");
    std::fs::write(&path, &default).unwrap();
    std::fs::write(&pinned_path, &default).unwrap();

    let validator = new_validator(None, None);
    let active = ActivePolicy::new(initial(&validator, &path.display().to_string(), &default));
    let served = Running::serve(&env, &wds_name, active.clone());
    let aggregated = |o: &Observed| o.is_multi_wec(&Fleet::aggregate(1));
    fleet
        .wait_all("the default policy's aggregate", aggregated)
        .await;
    let swapper = Arc::new(Swapper::new(validator, active.clone(), None));
    let _watch = watch_file(&path, swapper).await;
    // A second source whose validator pins the default policy's sha256, as
    // `--policy-sha256` does.
    let pinned = new_validator(None, Some(digest("default")));
    let pinned_swapper = Arc::new(Swapper::new(pinned, active.clone(), None));
    let _pinned_watch = watch_file(&pinned_path, pinned_swapper).await;
    let before = fleet.resource_versions().await;
    let last_rejection = || {
        active.status()["lastRejection"]
            .as_str()
            .unwrap()
            .to_string()
    };

    replace_file(&path, &random_bytes(4096));
    wait_swaps(&active, (0, 1)).await;
    let reason = last_rejection();
    assert!(
        reason.contains(&path.display().to_string())
            && reason.contains("not a WebAssembly component"),
        "{reason}"
    );
    fleet.assert_unchanged(&before, &active, (0, 1)).await;

    replace_file(&path, &component("always-trap"));
    wait_swaps(&active, (0, 2)).await;
    let reason = last_rejection();
    assert!(
        reason.contains("self-test") && reason.contains("cases failed"),
        "{reason}"
    );
    fleet.assert_unchanged(&before, &active, (0, 2)).await;

    replace_file(&pinned_path, &component("strict-singleton"));
    wait_swaps(&active, (0, 3)).await;
    let reason = last_rejection();
    let pin = digest("default").trim_start_matches("sha256:").to_string();
    assert!(
        reason.contains(&pinned_path.display().to_string())
            && reason.contains("--policy-sha256 pins")
            && reason.contains(&pin),
        "{reason}"
    );
    fleet.assert_unchanged(&before, &active, (0, 3)).await;

    assert_eq!(active.current().policy.info().digest, digest("default"));
    assert_eq!(active.status()["swapsRejected"], 3);
    assert!(logged(&[
        "policy rejected",
        &pinned_path.display().to_string()
    ]));
    fleet.wait_all("still aggregated", aggregated).await;
    served.assert_no_errors();

    served.stop().await;
}
