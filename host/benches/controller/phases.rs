//! One size N: a fresh control plane, the untimed setup, then phases A to E
//! (described in main.rs), each printing its figures as it ends.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use status_router::kubestellar::{Binding, WorkStatus, crds_yaml};

use crate::ctl::{Counters, Ctl};
use crate::objects::{
    binding, create_namespace, deployment, deployment_status, name, report, run_bounded,
    work_status,
};
use crate::procs::{CpuReport, ProcSet, proc_status_kib};
use crate::stats::Stats;
use crate::tracker::Tracker;
use crate::{NAMESPACE, Options, PER_BINDING, WEC};

#[derive(Debug, Default)]
pub struct RunResult {
    pub n: usize,
    pub wall: Duration,
    pub setup: Duration,
    pub initial_sync: Duration,
    pub initial_counters: Counters,
    /// ITS updates acknowledged per second during the burst.
    pub its_rate: f64,
    pub burst_rate: f64,
    pub burst_span: Duration,
    pub burst_latency: Stats,
    pub paced_latency: Stats,
    pub paced_n: usize,
    pub counters: Counters,
    pub controller_hwm_kib: Option<u64>,
    /// The controller's resident set after phase C (steady state, all objects cached).
    pub controller_rss_kib: Option<u64>,
    pub bench_hwm_kib: (u64, u64),
    pub burst_cpu: CpuReport,
    pub bare_rate: f64,
    pub bare_seen_rate: f64,
    pub bare_cpu: CpuReport,
    pub catchup_from_start: Duration,
    pub catchup_rate: f64,
    pub catchup_counters: Counters,
    pub catchup_hwm_kib: Option<u64>,
    pub catchup_cpu: CpuReport,
}

pub async fn run_size(opts: &Options, n: usize) -> anyhow::Result<RunResult> {
    let mut r = RunResult {
        n,
        ..Default::default()
    };
    println!("\n=== N = {n} ===");
    let plane = tokio::task::block_in_place(testenv::ControlPlane::start)
        .context("start the local control plane")?;
    let wds = plane.wds_client().await?;
    let its = plane.its_client().await?;
    let procs = ProcSet::of_plane(&plane);

    // --- setup (not timed in the results)
    let t = Instant::now();
    testenv::install_crds(&wds, &crds_yaml()).await?;
    testenv::install_crds(&its, &crds_yaml()).await?;
    create_namespace(&wds, NAMESPACE).await?;
    create_namespace(&its, WEC).await?;
    let c = opts.concurrency;
    let deployments: Api<Deployment> = Api::namespaced(wds.clone(), NAMESPACE);
    run_bounded(n, c, "create Deployments", |i| {
        let api = deployments.clone();
        async move {
            api.create(&PostParams::default(), &deployment(i)).await?;
            Ok(())
        }
    })
    .await?;
    let bindings: Api<Binding> = Api::all(wds.clone());
    for b in 0..n.div_ceil(PER_BINDING) {
        let range = b * PER_BINDING..((b + 1) * PER_BINDING).min(n);
        bindings
            .create(&PostParams::default(), &binding(b, range))
            .await
            .with_context(|| format!("create Binding {b}"))?;
    }
    let statuses: Api<WorkStatus> = Api::namespaced(its.clone(), WEC);
    run_bounded(n, c, "create WorkStatuses", |i| {
        let api = statuses.clone();
        async move {
            api.create(&PostParams::default(), &work_status(i)).await?;
            report(&api, i, 1).await?;
            Ok(())
        }
    })
    .await?;
    r.setup = t.elapsed();
    println!(
        "setup: {n} Deployments, {} Bindings, {n} WorkStatuses in {:.1?}",
        n.div_ceil(PER_BINDING),
        r.setup
    );

    // The watch that times every phase.
    let tracker = Tracker::new(n);
    let watch = tokio::spawn(tracker.clone().watch(deployments.clone()));
    tracker.wait_listed().await;

    // --- A: first sync
    tracker.arm(1, 0..n);
    let t = Instant::now();
    let ctl = Ctl::start(opts, &plane, wds.clone(), its.clone()).await?;
    let procs = procs.with(ctl.pid(), "controller");
    tracker.wait_all("A first sync", Some(&ctl)).await?;
    r.initial_sync = t.elapsed();
    // The watch may deliver a write before the controller has counted it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    r.initial_counters = ctl.counters().await?;
    println!(
        "A first sync: all {n} statuses in {:.1?} (from controller start); {}",
        r.initial_sync, r.initial_counters
    );
    // Let the echoes of our own writes settle before the timed phase.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // --- B: burst
    let before = ctl.counters().await?;
    let cpu0 = procs.sample();
    tracker.arm(2, 0..n);
    let acks = Arc::new(Mutex::new(vec![None::<Instant>; n]));
    let first_sent = Instant::now();
    run_bounded(n, c, "update WorkStatuses (burst)", |i| {
        let api = statuses.clone();
        let acks = acks.clone();
        async move {
            report(&api, i, 2).await?;
            acks.lock().unwrap()[i] = Some(Instant::now());
            Ok(())
        }
    })
    .await?;
    let last_ack = Instant::now();
    tracker.wait_all("B burst", Some(&ctl)).await?;
    let burst_cpu = procs.sample().since(&cpu0);
    let seen = tracker.seen();
    let last_seen = seen.iter().flatten().max().copied().expect("n > 0");
    r.its_rate = n as f64 / (last_ack - first_sent).as_secs_f64();
    r.burst_span = last_seen - first_sent;
    r.burst_rate = n as f64 / r.burst_span.as_secs_f64();
    r.burst_latency = Stats::latencies(&acks.lock().unwrap(), &seen);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = ctl.counters().await?;
    r.burst_cpu = burst_cpu.report(r.burst_span);
    println!(
        "B burst: ITS took the {n} updates at {:.0}/s; WDS followed at {:.0} writes/s ({:.1?}); latency {}; {}",
        r.its_rate,
        r.burst_rate,
        r.burst_span,
        r.burst_latency,
        after.minus(&before)
    );
    println!("  CPU during B: {}", r.burst_cpu);
    tokio::time::sleep(Duration::from_secs(1)).await;

    // --- C: paced
    let m = opts.paced_count.min(n);
    r.paced_n = m;
    if m > 0 {
        tracker.arm(3, 0..m);
        let acks = Arc::new(Mutex::new(vec![None::<Instant>; n]));
        let period = Duration::from_secs_f64(1.0 / opts.paced_rate.max(0.001));
        let start = tokio::time::Instant::now();
        let mut tasks = Vec::with_capacity(m);
        for i in 0..m {
            tokio::time::sleep_until(start + period * i as u32).await;
            let api = statuses.clone();
            let acks = acks.clone();
            tasks.push(tokio::spawn(async move {
                report(&api, i, 3).await?;
                acks.lock().unwrap()[i] = Some(Instant::now());
                anyhow::Ok(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        tracker.wait_all("C paced", Some(&ctl)).await?;
        r.paced_latency = Stats::latencies(&acks.lock().unwrap(), &tracker.seen());
        println!(
            "C paced: {m} updates at {}/s; latency {}",
            opts.paced_rate, r.paced_latency
        );
    }

    r.counters = ctl.counters().await?;
    r.controller_hwm_kib = ctl.vm_hwm_kib();
    r.controller_rss_kib = ctl.proc_status_kib("VmRSS");
    r.bench_hwm_kib = (
        proc_status_kib("self", "VmHWM").unwrap_or(0),
        proc_status_kib("self", "VmRSS").unwrap_or(0),
    );
    ctl.stop().await;
    let procs = procs.without("controller");

    // --- D: bare loop, with the controller's concurrency
    tracker.arm(4, 0..n);
    let ar = ApiResource::erase::<Deployment>(&());
    let dynamic: Api<DynamicObject> = Api::namespaced_with(wds.clone(), NAMESPACE, &ar);
    let params = PatchParams {
        field_manager: Some("status-router-bench".into()),
        ..PatchParams::default()
    };
    let cpu0 = procs.sample();
    let first_sent = Instant::now();
    run_bounded(n, opts.workers, "bare status patches", |i| {
        let api = dynamic.clone();
        let params = params.clone();
        async move {
            let ops = json!([{"op": "add", "path": "/status", "value": deployment_status(4)}]);
            let ops: json_patch::Patch = serde_json::from_value(ops)?;
            api.patch_status(&name(i), &params, &Patch::Json::<Value>(ops))
                .await?;
            Ok(())
        }
    })
    .await?;
    let bare_span = first_sent.elapsed();
    r.bare_cpu = procs.sample().since(&cpu0).report(bare_span);
    r.bare_rate = n as f64 / bare_span.as_secs_f64();
    tracker.wait_all("D bare (watch)", None).await?;
    let last_seen = tracker
        .seen()
        .iter()
        .flatten()
        .max()
        .copied()
        .expect("n > 0");
    r.bare_seen_rate = n as f64 / (last_seen - first_sent).as_secs_f64();
    println!(
        "D bare loop ({} in flight): {:.0} writes/s acknowledged ({:.1?}), {:.0}/s seen on the watch",
        opts.workers, r.bare_rate, bare_span, r.bare_seen_rate
    );
    println!("  CPU during D: {}", r.bare_cpu);

    // --- E: catch-up after a restart
    run_bounded(n, c, "update WorkStatuses (controller down)", |i| {
        let api = statuses.clone();
        async move { report(&api, i, 5).await }
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    tracker.arm(5, 0..n);
    let t = Instant::now();
    let ctl = Ctl::start(opts, &plane, wds.clone(), its.clone()).await?;
    let procs = procs.with(ctl.pid(), "controller");
    let cpu0 = procs.sample();
    tracker.wait_all("E catch-up", Some(&ctl)).await?;
    r.catchup_from_start = t.elapsed();
    let seen = tracker.seen();
    let first = seen.iter().flatten().min().copied().expect("n > 0");
    let last = seen.iter().flatten().max().copied().expect("n > 0");
    r.catchup_rate = n as f64 / (last - first).as_secs_f64().max(1e-6);
    r.catchup_cpu = procs.sample().since(&cpu0).report(r.catchup_from_start);
    tokio::time::sleep(Duration::from_millis(500)).await;
    r.catchup_counters = ctl.counters().await?;
    r.catchup_hwm_kib = ctl.vm_hwm_kib();
    ctl.stop().await;
    println!(
        "E catch-up: {n} statuses {:.1?} after the controller's start, {:.0} writes/s from the first to the last; {}",
        r.catchup_from_start, r.catchup_rate, r.catchup_counters
    );
    println!("  CPU during E: {}", r.catchup_cpu);

    watch.abort();
    drop(plane);
    Ok(r)
}
