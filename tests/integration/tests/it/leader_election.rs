//! Leader election against a real API server: replicas of one controller
//! (in-process, each with its own lease task and Lease identity) share one
//! `coordination.k8s.io/v1` Lease in the WDS.
//!
//! - exactly one leads and writes; the standby keeps its watches synced (it
//!   is ready) and writes nothing;
//! - a clean hand-over (the leader stops, then releases the Lease) lets the
//!   standby lead within a few retry periods, and a WorkStatus change made
//!   after it reaches the WDS through the new leader;
//! - a crash (the lease task ends without releasing) fences the old leader at
//!   once (its controller stops with `StartError::Leadership`), and another
//!   replica leads once the Lease expires;
//! - the writes outside the workers (StatusCollector statuses, Binding
//!   conditions) wait for leadership too.
//!
//! The processes' side (SIGTERM, exit codes, probes) is in
//! `host/tests/cli/run.rs`.

use std::time::{Duration, Instant};

use integration_tests::*;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use status_router::controller::StartError;
use status_router::kubestellar::{Binding, StatusCollector};
use status_router::ops::leader::{Leadership, LeaseSettings};
use status_router::runtime::health::Health;
use status_router::runtime::role::Role;

/// Short timings, so that a crash fails over in seconds; a Lease taken at
/// its expiry (at least 5 s after the last renewal) is told apart from one
/// taken on release (about one retry period).
fn settings(namespace: &str, name: &str, identity: &str) -> LeaseSettings {
    LeaseSettings {
        namespace: namespace.into(),
        name: name.into(),
        identity: identity.into(),
        lease_duration: Duration::from_secs(6),
        renew_deadline: Duration::from_secs(4),
        retry_period: Duration::from_secs(1),
    }
}

/// One replica: its lease task and its controller.
struct Replica {
    identity: &'static str,
    leadership: Leadership,
    running: Running,
    health: std::sync::Arc<Health>,
}

impl Replica {
    fn start(env: &Env, wds_name: &str, lease: (&str, &str), identity: &'static str) -> Self {
        let lease_health = Health::new();
        let leadership = Leadership::start(
            env.wds.clone(),
            settings(lease.0, lease.1, identity),
            &lease_health,
        )
        .expect("valid settings");
        let (running, health) = Running::elected(env, wds_name, leadership.role());
        Self {
            identity,
            leadership,
            running,
            health,
        }
    }

    fn writes(&self) -> (u64, u64) {
        let m = self.running.metrics();
        (m.status_writes(), m.label_writes())
    }

    /// Waits until this replica has counted at least `n` status writes. The
    /// count goes up once the API server has answered, which can be after
    /// the watch has already shown the write to the test.
    async fn wait_status_writes(&self, n: u64) {
        let what = format!("{} to count {n} status write(s)", self.identity);
        wait_for(&what, TIMEOUT, || async {
            let writes = self.writes();
            if writes.0 >= n {
                Ok(())
            } else {
                Err(format!("{writes:?}"))
            }
        })
        .await;
    }
}

async fn holder(env: &Env, namespace: &str, name: &str) -> Option<String> {
    let lease = Api::<Lease>::namespaced(env.wds.clone(), namespace)
        .get(name)
        .await
        .expect("the Lease exists");
    lease.spec.and_then(|s| s.holder_identity)
}

async fn wait_leading(replica: &Replica) {
    let mut role = replica.leadership.role();
    tokio::time::timeout(TIMEOUT, role.wait_for(|r| *r == Role::Leading))
        .await
        .unwrap_or_else(|_| panic!("{} leads within {TIMEOUT:?}", replica.identity))
        .expect("the lease task runs");
}

#[async_test]
async fn one_replica_writes_and_the_standby_takes_over_on_release_and_on_crash() {
    let scene = Scene::new("singleton").await;
    let (env, wds_name, report) = (&scene.env, &scene.wds_name, scene.web_report());
    let web = &scene.web().await;
    let wec = env.wec().await;
    let lease_ns = testenv::create_namespace(&env.wds, "lease").await;
    let lease_name = format!("status-router-{wds_name}");
    let lease = (lease_ns.as_str(), lease_name.as_str());
    let status = deployment_status(2, 2);
    scene.report_web(&wec, Some(&status)).await;
    scene.bind_web(&[&wec], SINGLETON).await;

    let a = Replica::start(env, wds_name, lease, "replica-a");
    wait_leading(&a).await;
    let b = Replica::start(env, wds_name, lease, "replica-b");
    web.wait_singleton(&status).await;
    assert_eq!(
        holder(env, lease.0, lease.1).await.as_deref(),
        Some("replica-a")
    );
    // The standby synced its watches: ready, like the leader, and not leading.
    wait_for("the standby to be ready", TIMEOUT, || async {
        let v = b.health.readiness();
        if v.ok { Ok(()) } else { Err(v.body) }
    })
    .await;
    assert!(a.health.readiness().ok);
    assert!(!b.leadership.is_leading());
    // Whatever the leader did meanwhile, the standby wrote nothing.
    let update = deployment_status(3, 3);
    set_report_status(&env.its, &wec, &report, Some(&update)).await;
    web.wait_singleton(&update).await;
    a.wait_status_writes(2).await;
    assert_eq!(b.writes(), (0, 0), "the standby wrote nothing");
    assert_eq!(b.running.reconciles(), 0, "nor reconciled anything");

    // Clean hand-over: the leader finishes, then releases the Lease.
    let Replica {
        leadership,
        running,
        ..
    } = a;
    running.stop().await;
    let released = Instant::now();
    leadership
        .release(TIMEOUT)
        .await
        .expect("the leader releases the Lease");
    wait_leading(&b).await;
    let took_over = released.elapsed();
    assert!(
        took_over < Duration::from_secs(4),
        "a released Lease is taken within a few retry periods, not at its expiry: {took_over:?}"
    );
    assert_eq!(
        holder(env, lease.0, lease.1).await.as_deref(),
        Some("replica-b")
    );
    let after_release = deployment_status(4, 3);
    set_report_status(&env.its, &wec, &report, Some(&after_release)).await;
    web.wait_singleton(&after_release).await;
    b.wait_status_writes(1).await;

    // Crash: the lease task ends without releasing. The controller stops
    // writing at once; a third replica leads once the Lease has expired.
    let c = Replica::start(env, wds_name, lease, "replica-c");
    let Replica {
        leadership,
        running,
        ..
    } = b;
    let fenced = running.metrics().clone();
    let fenced_at = fenced.status_writes();
    let crashed = Instant::now();
    leadership.abort();
    match running.ended().await {
        Err(StartError::Leadership(reason)) => {
            assert!(reason.contains("lease task"), "{reason}")
        }
        other => panic!("a replica whose lease task ended must stop: {other:?}"),
    }
    wait_leading(&c).await;
    assert!(
        crashed.elapsed() >= Duration::from_secs(4),
        "nobody takes an unexpired Lease: {:?}",
        crashed.elapsed()
    );
    let after_crash = deployment_status(5, 5);
    set_report_status(&env.its, &wec, &report, Some(&after_crash)).await;
    web.wait_singleton(&after_crash).await;
    c.wait_status_writes(1).await;
    assert_eq!(
        fenced.status_writes(),
        fenced_at,
        "the fenced replica wrote nothing more"
    );

    let Replica {
        leadership,
        running,
        ..
    } = c;
    running.stop().await;
    leadership.release(TIMEOUT).await.expect("release");
    assert_eq!(
        holder(env, lease.0, lease.1).await,
        None,
        "a released Lease has no holder"
    );
}

/// The writers that run beside the workers (a StatusCollector's `status`, a
/// Binding's `StatusCollectorsAvailable` condition) wait for leadership like
/// the workers: a standby writes neither, and writes both once it leads.
#[async_test]
async fn a_standby_writes_no_collector_status_nor_binding_condition_until_it_leads() {
    let env = Env::new().await;
    let wds_name = testenv::unique_name("wds");
    let lease_ns = testenv::create_namespace(&env.wds, "lease").await;
    let lease_name = format!("status-router-{wds_name}");
    // Someone else holds the Lease, for an hour.
    let leases = Api::<Lease>::namespaced(env.wds.clone(), &lease_ns);
    let now = k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S.%6fZ")
        .to_string();
    let other: Lease = serde_json::from_value(json!({
        "metadata": {"name": lease_name},
        "spec": {"holderIdentity": "someone-else", "leaseDurationSeconds": 3600,
                 "acquireTime": now, "renewTime": now},
    }))
    .expect("a Lease");
    leases
        .create(&PostParams::default(), &other)
        .await
        .expect("create the Lease");
    let collector = testenv::unique_name("invalid");
    let sc: StatusCollector = serde_json::from_value(json!({
        "apiVersion": "control.kubestellar.io/v1alpha1",
        "kind": "StatusCollector",
        "metadata": {"name": collector},
        "spec": {"select": [{"name": "x", "def": "returned.status.("}], "limit": 10},
    }))
    .expect("a StatusCollector");
    let collectors: Api<StatusCollector> = Api::all(env.wds.clone());
    collectors
        .create(&PostParams::default(), &sc)
        .await
        .expect("create the StatusCollector");
    let ns = env.namespace().await;
    let wec = env.wec().await;
    let binding = testenv::unique_name("names-missing");
    let mut clause = deployment_clause(&ns, "web", NO_FLAGS);
    clause.modulation.status_collectors = vec![testenv::unique_name("missing")];
    env.put_binding(&binding, binding_spec(&[&wec], vec![clause], vec![]))
        .await;
    let bindings: Api<Binding> = Api::all(env.wds.clone());
    let collector_errors = || async {
        let sc = collectors
            .get(&collector)
            .await
            .expect("read the collector");
        sc.status.map(|s| s.errors).unwrap_or_default()
    };
    let condition = || async {
        let b = bindings.get(&binding).await.expect("read the Binding");
        b.status
            .map(|s| s.conditions)
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "StatusCollectorsAvailable")
    };

    let standby = Replica::start(&env, &wds_name, (&lease_ns, &lease_name), "replica-s");
    wait_for("the standby to be ready", TIMEOUT, || async {
        let v = standby.health.readiness();
        if v.ok { Ok(()) } else { Err(v.body) }
    })
    .await;
    // A leader writes both within a second of its sync (see combined_status.rs);
    // the standby, in three seconds, writes neither.
    tokio::time::sleep(Duration::from_secs(3)).await; // what must not happen
    assert!(!standby.leadership.is_leading());
    assert_eq!(
        collector_errors().await,
        Vec::<String>::new(),
        "no status from a standby"
    );
    assert_eq!(condition().await, None, "no condition from a standby");

    // The other holder lets go: the standby leads and writes both.
    leases
        .patch(
            &lease_name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"holderIdentity": null}})),
        )
        .await
        .expect("release the Lease");
    wait_leading(&standby).await;
    wait_for("the collector's errors", TIMEOUT, || async {
        let errors = collector_errors().await;
        if errors.is_empty() {
            Err("none yet".to_string())
        } else {
            Ok(())
        }
    })
    .await;
    wait_for("the Binding's condition", TIMEOUT, || async {
        match condition().await {
            Some(c) if c.status == "False" && c.reason == "ReconcileError" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    let Replica {
        leadership,
        running,
        ..
    } = standby;
    running.stop().await;
    leadership.release(TIMEOUT).await.expect("release");
    let _ = collectors.delete(&collector, &Default::default()).await;
}
