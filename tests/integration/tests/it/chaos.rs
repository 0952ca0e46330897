//! The seeded chaos suite: the real control plane (etcd, the WDS and ITS API
//! servers), the controller as a real `status-router run` process, and, on a
//! schedule drawn from the seed, every kind of fault in `plan::Fault` while
//! the inputs keep changing. At the end every object's WDS status and labels
//! must equal what the rules say for the final inputs (`oracle`), the decoys
//! and every WorkStatus must be untouched, and the controller may only have
//! written statuses and its two labels.
//!
//! `CHAOS_SEED`, `CHAOS_OBJECTS` and `CHAOS_SECONDS` choose the run (the
//! defaults are the short form that `cargo xtask test` runs); `cargo xtask
//! chaos --seed N --objects N --seconds N` runs the long one. It prints the
//! seed, the faults, objects right/wrong and the time to converge after the
//! last fault, and fails above 3 s counted from the moment every server
//! answers `/readyz` again.

mod controller;
mod oracle;
mod plan;
mod world;
mod writes;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use integration_tests::async_test;
use plan::{Fault, OUTAGE, PAUSE, Rng, Settings};
use testenv::{ControlPlane, Server};
use world::{NAMESPACE, WDS_NAME, WECS, World};

/// How long the suite keeps looking for every object to be right after the
/// last fault (beyond it, the run fails with the objects still wrong).
const CONVERGE_LIMIT: Duration = Duration::from_secs(60);
/// Every object as the rules say within this long of the last fault or
/// input, counted from the moment every server answers `/readyz` again.
const CONVERGE_TARGET: Duration = Duration::from_secs(3);

#[async_test(worker_threads = 4)]
async fn seeded_faults_converge_to_the_rules() {
    integration_tests::init_logs();
    let _alone = integration_tests::alone().await;
    let settings = Settings::from_env();
    let mut rng = Rng::new(settings.seed);
    let faults = plan::schedule(&mut rng, settings.seconds);
    println!(
        "chaos: seed {} objects {} seconds {} faults {faults:?}",
        settings.seed, settings.objects, settings.seconds
    );
    let cp = ControlPlane::start().expect("start a private control plane");
    let wds = cp.wds_client().await.unwrap();
    let its = cp.its_client().await.unwrap();
    let crds = status_router::kubestellar::crds_yaml();
    testenv::install_crds(&wds, &crds).await.unwrap();
    testenv::install_crds(&its, &crds).await.unwrap();
    testenv::install_crds(&wds, integration_tests::GADGETS_CRD)
        .await
        .unwrap();
    testenv::create_namespace_named(&wds, NAMESPACE).await;
    for wec in WECS {
        testenv::create_namespace_named(&its, wec).await;
    }

    let dir = integration_tests::TempDir::new("chaos");
    let policy = dir.path().join("policy.wasm");
    std::fs::write(&policy, integration_tests::component("default")).unwrap();
    let mut controller =
        controller::Process::new(cp.kubeconfig_path(), WDS_NAME, &policy, dir.path());
    println!("chaos: controller log {}", controller.log().display());
    controller.start();

    let t0 = Instant::now();
    let mut world = World::create(wds.clone(), its.clone(), &mut rng, settings.objects).await;
    println!(
        "chaos: created {} objects, {} decoys, {} Bindings, {} WorkStatuses in {:.1?}",
        world.objects.len(),
        world.decoys.len(),
        world.bindings.len(),
        world.reports.len(),
        t0.elapsed()
    );
    let decoys_before = oracle::observe(&world).await.expect("observe the decoys");

    // Faults at even intervals over the run, the inputs changing throughout.
    let run = Duration::from_secs(settings.seconds);
    let start = Instant::now();
    let mut swapped = false;
    let mut mutations: BTreeMap<&str, usize> = BTreeMap::new();
    let mut log = Vec::new();
    let mut write_watch = None;
    for (i, fault) in faults.iter().enumerate() {
        let at = run * (i as u32 + 1) / (faults.len() as u32 + 1);
        while start.elapsed() < at {
            *mutations.entry(world.mutate(&mut rng).await).or_default() += 1;
        }
        if i + 1 == faults.len() {
            // The final inputs are complete before the last fault.
            world.complete_reports(&mut rng).await;
            write_watch = Some(writes::Watch::start(controller.writes()));
        }
        let began = start.elapsed();
        inject(
            *fault,
            &cp,
            &mut controller,
            &mut world,
            &mut rng,
            &policy,
            &mut swapped,
        )
        .await;
        controller.assert_running();
        log.push(format!(
            "{:>6.1?} {fault:?} ({:.1?})",
            began,
            start.elapsed() - began
        ));
        println!("chaos: {}", log.last().unwrap());
    }
    // The clock starts when every server answers `/readyz` again: the
    // inputs were complete before the last fault, and nothing can be
    // written while a server is down or stopped.
    let servers_ready = tokio::task::block_in_place(|| {
        [Server::Etcd, Server::Wds, Server::Its]
            .into_iter()
            .all(|server| cp.ready(server, CONVERGE_LIMIT))
    });
    assert!(
        servers_ready,
        "a server is not ready {CONVERGE_LIMIT:?} after the last fault"
    );
    let ready_again = Instant::now();
    println!("chaos: mutations {mutations:?}");

    // Converged: every object as the rules say for the final inputs.
    let inputs = loop {
        if let Some(inputs) = oracle::Inputs::read(&world).await {
            break inputs;
        }
    };
    // Where the time to converge goes: reading the inputs back, then each
    // observation of the WDS (how long it took, how many objects were wrong).
    println!(
        "chaos: final inputs read {:.2?} after every server was ready again",
        ready_again.elapsed()
    );
    let mut wrong = Vec::new();
    let mut polls = Vec::new();
    let converged = loop {
        wrong.clear();
        let observed_at = ready_again.elapsed();
        let seen = oracle::observe(&world).await;
        if let Some(seen) = seen {
            for o in &world.objects {
                let want = inputs.expected(o, swapped);
                match seen.get(&o.name) {
                    Some((got, _, _)) if same(got, &want, o.kind.2 != "gadgets") => {}
                    got => wrong.push(format!(
                        "{}: want {} {want_labels:?}, got {}",
                        o.name,
                        want.status,
                        got.map_or("nothing".into(), |g| format!(
                            "{} {:?}",
                            g.0.status,
                            (g.0.singleton, g.0.multi_wec)
                        )),
                        want_labels = (want.singleton, want.multi_wec),
                    )),
                }
            }
            polls.push(format!("{observed_at:.1?}: {} wrong", wrong.len()));
            if wrong.is_empty() {
                break Some(ready_again.elapsed());
            }
        }
        if ready_again.elapsed() > CONVERGE_LIMIT {
            break None;
        }
        // Poll the WDS until every object is right.
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    controller.assert_running();
    let (last_write, writes) = write_watch.expect("a write watch").stop();
    println!(
        "chaos: observations after the last fault: {}",
        polls.join(", ")
    );
    // When the controller last changed the WDS: with every object seen right,
    // that is when the statuses converged. The observations only confirm it,
    // and each takes seconds at 2,000 objects (reading the inputs back from a
    // just-resumed server, listing the WDS): the suite's cost, not the
    // controller's.
    let last_write =
        last_write.map_or(Duration::ZERO, |t| t.saturating_duration_since(ready_again));
    println!(
        "chaos: the controller's last write came {last_write:.2?} after every server was ready again ({writes} writes counted by its last process)"
    );
    let total = world.objects.len();
    println!(
        "chaos: seed {} objects right {}/{total}, wrong {}; faults {}; converged {:?} after the last fault; controller started {} times",
        settings.seed,
        total - wrong.len(),
        wrong.len(),
        faults.len(),
        converged,
        controller.starts
    );
    let logged = std::fs::read_to_string(controller.log()).unwrap_or_default();
    let gone = logged
        .lines()
        .filter(|l| l.contains("410") || l.contains("too old resource version"))
        .count();
    println!("chaos: watch restarts after 410 Gone seen in the controller log: {gone}");

    assert!(
        wrong.is_empty(),
        "{} of {total} objects wrong {CONVERGE_LIMIT:?} after the last fault; first ones:\n{}",
        wrong.len(),
        wrong
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        gone > 0,
        "the compaction fault made no watch relist after 410 Gone"
    );

    // Nothing outside our objects was written.
    let seen = oracle::observe(&world).await.expect("observe");
    for d in &world.decoys {
        let (before, after) = (&decoys_before[&d.name].0, &seen[&d.name].0);
        assert_eq!(before, after, "decoy {} was written", d.name);
    }
    for o in &world.objects {
        let (_, generation, fields) = &seen[&o.name];
        // A custom resource without a status subresource counts every write
        // in its generation; the others count only spec changes.
        if o.kind.2 != "gadgets" {
            assert_eq!(*generation, 1, "{}: the spec was written", o.name);
        }
        assert_only_status_and_labels(&o.name, fields);
    }
    assert_work_statuses_untouched(&world).await;
    // Every object right at the end: the WDS took its final state with the
    // controller's last write.
    let converged = last_write.min(converged.unwrap());
    println!("chaos: converged {converged:.2?} after every server was ready again");
    assert!(
        converged <= CONVERGE_TARGET,
        "converged {converged:?} after every server was ready again, more than {CONVERGE_TARGET:?}; \
         the controller log is {}",
        controller.log().display()
    );
}

/// Equal status and labels (the resourceVersion aside). A Deployment's or
/// StatefulSet's status is a typed struct in the API server, which drops the
/// fields that are 0 (Go's `omitempty`): for those kinds zeros do not count.
fn same(
    got: &integration_tests::Observed,
    want: &integration_tests::Observed,
    typed: bool,
) -> bool {
    let norm = |v: &serde_json::Value| match v.as_object() {
        Some(fields) if typed => serde_json::Value::Object(
            fields
                .iter()
                .filter(|(_, v)| v.as_i64() != Some(0))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        _ => v.clone(),
    };
    norm(&got.status) == norm(&want.status)
        && got.singleton == want.singleton
        && got.multi_wec == want.multi_wec
}

async fn inject(
    fault: Fault,
    cp: &ControlPlane,
    controller: &mut controller::Process,
    world: &mut World,
    rng: &mut Rng,
    policy: &std::path::Path,
    swapped: &mut bool,
) {
    let restart = |server: Server| {
        cp.restart(server)
            .unwrap_or_else(|e| panic!("restart {}: {e}", server.name()))
    };
    match fault {
        Fault::KillController => {
            controller.kill();
            controller.start();
        }
        Fault::KillWds | Fault::KillIts | Fault::KillEtcd => {
            let server = match fault {
                Fault::KillWds => Server::Wds,
                Fault::KillIts => Server::Its,
                _ => Server::Etcd,
            };
            cp.kill(server).expect("kill");
            outage(world, rng, OUTAGE).await;
            tokio::task::block_in_place(|| restart(server));
            if server == Server::Etcd {
                // The API servers reconnect to etcd on their own: wait for both.
                tokio::task::block_in_place(|| {
                    restart_if_unready(cp, Server::Wds);
                    restart_if_unready(cp, Server::Its);
                });
            }
        }
        Fault::PauseWds | Fault::PauseIts => {
            let server = if fault == Fault::PauseWds {
                Server::Wds
            } else {
                Server::Its
            };
            cp.pause(server).expect("pause");
            outage(world, rng, PAUSE).await;
            cp.resume(server).expect("resume");
        }
        Fault::CompactEtcd => {
            for _ in 0..50 {
                world.mutate(rng).await;
            }
            cp.compact_etcd().expect("compact etcd");
            tokio::task::block_in_place(|| restart(Server::Wds));
            tokio::task::block_in_place(|| restart(Server::Its));
        }
        Fault::SwapPolicy => {
            integration_tests::replace_file(policy, &integration_tests::component("label-driven"));
            *swapped = true;
        }
    }
}

/// The inputs keep changing while a server is down or stopped (what can be
/// written: the other server's objects).
async fn outage(world: &mut World, rng: &mut Rng, length: Duration) {
    let until = Instant::now() + length;
    while Instant::now() < until {
        world.mutate(rng).await;
    }
}

/// After etcd's return, waits for an API server to be ready again.
fn restart_if_unready(cp: &ControlPlane, server: Server) {
    if !cp.ready(server, Duration::from_secs(30)) {
        cp.restart(server)
            .unwrap_or_else(|e| panic!("restart {}: {e}", server.name()));
    }
}

/// The controller's field manager may own only `status` and its labels (the
/// two `managed-by` ones and `kubestellar.io/executing-count`).
fn assert_only_status_and_labels(name: &str, fields: &serde_json::Value) {
    for entry in fields.as_array().into_iter().flatten() {
        if entry["manager"] != "status-router" {
            continue;
        }
        let owned = &entry["fieldsV1"];
        for (key, value) in owned.as_object().into_iter().flatten() {
            match key.as_str() {
                "f:status" => {}
                "f:metadata" => {
                    for (k, labels) in value.as_object().into_iter().flatten() {
                        assert_eq!(k, "f:labels", "{name}: status-router owns metadata {k}");
                        for label in labels.as_object().into_iter().flatten().map(|l| l.0) {
                            assert!(
                                label.starts_with("f:managed-by.kubestellar.io/")
                                    || *label
                                        == format!(
                                            "f:{}",
                                            status_router::kubestellar::EXECUTING_COUNT_LABEL
                                        ),
                                "{name}: status-router owns label {label}"
                            );
                        }
                    }
                }
                other => panic!("{name}: status-router owns {other}: {owned}"),
            }
        }
    }
}

/// The controller never writes to the ITS.
async fn assert_work_statuses_untouched(world: &World) {
    use kube::api::{Api, ListParams};
    for wec in WECS {
        let api: Api<status_router::kubestellar::WorkStatus> =
            Api::namespaced(world.its.clone(), wec);
        for ws in api.list(&ListParams::default()).await.expect("list").items {
            let managers: Vec<_> = ws
                .metadata
                .managed_fields
                .iter()
                .flatten()
                .filter_map(|f| f.manager.clone())
                .collect();
            assert!(
                !managers.iter().any(|m| m == "status-router"),
                "{wec}/{:?} written by the controller: {managers:?}",
                ws.metadata.name
            );
        }
    }
}
