//! One size N: a fresh control plane, the untimed setup, then phases A to C
//! and the rounds of D and E (described in main.rs), each printing its
//! figures as it ends.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, PostParams};
use status_router::kubestellar::{Binding, WorkStatus, crds_yaml};

use crate::ctl::{Counters, Ctl};
use crate::objects::{binding, create_namespace, deployment, report, run_bounded, work_status};
use crate::procs::{CpuReport, ProcSet, proc_status_kib};
use crate::rounds::{BareRound, Bench, CatchUpRound, median};
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
    /// D, one entry per round.
    pub bare: Vec<BareRound>,
    /// D', with `--watched-bare`: D with a second watch of the Deployments open.
    pub bare_watched: Vec<BareRound>,
    /// E, one entry per round, interleaved with D's.
    pub catch_up: Vec<CatchUpRound>,
}

impl RunResult {
    /// The median of the bare loop's rounds, writes/s.
    pub fn bare_rate(&self) -> f64 {
        median(self.bare.iter().map(|r| r.rate).collect())
    }

    /// The median of the bare loop's rounds measured as E is (first to last seen).
    pub fn bare_first_to_last_rate(&self) -> f64 {
        median(self.bare.iter().map(|r| r.first_to_last_rate).collect())
    }

    /// The median of the rounds of D', writes/s as E is measured (first to
    /// last seen); `None` without `--watched-bare`.
    pub fn bare_watched_rate(&self) -> Option<f64> {
        (!self.bare_watched.is_empty()).then(|| {
            median(
                self.bare_watched
                    .iter()
                    .map(|r| r.first_to_last_rate)
                    .collect(),
            )
        })
    }

    /// The median of the catch-up rounds, writes/s.
    pub fn catch_up_rate(&self) -> f64 {
        median(self.catch_up.iter().map(|r| r.rate).collect())
    }

    /// The highest peak RSS of the catch-up controllers.
    pub fn catch_up_hwm_kib(&self) -> Option<u64> {
        self.catch_up.iter().filter_map(|r| r.hwm_kib).max()
    }
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
    if opts.pin {
        procs.pin()?;
    }

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
    let (_, last_seen) = tracker.seen_span().expect("n > 0");
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

    // --- D and E, interleaved rounds; each round writes values of its own.
    let bench = Bench {
        opts,
        plane: &plane,
        wds: wds.clone(),
        its: its.clone(),
        statuses: statuses.clone(),
        tracker: &tracker,
        procs,
        n,
    };
    for round in 1..=opts.rounds {
        let value = 10 * round as i64;
        r.bare.push(bench.bare_round(round, value, false).await?);
        if opts.watched_bare {
            r.bare_watched
                .push(bench.bare_round(round, value + 5, true).await?);
        }
        r.catch_up
            .push(bench.catch_up_round(round, value + 1).await?);
    }

    watch.abort();
    drop(plane);
    Ok(r)
}
