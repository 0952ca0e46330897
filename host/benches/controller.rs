//! Controller throughput on a real local control plane (etcd + WDS and ITS
//! kube-apiservers from `testenv`): how fast WorkStatus updates in the ITS
//! reach the WDS Deployments, against a bare kube-rs loop writing the same
//! status patches. Not a test: it prints figures. See BENCHMARKS.md.
//!
//!     cargo bench -p status-router --bench controller
//!     cargo bench -p status-router --bench controller -- --n 1000 --workers 16
//!
//! Options (or environment variables):
//!   --n 1000,10000         BENCH_N            workload objects per run (a fresh control plane each)
//!   --workers 16           BENCH_WORKERS      controller workers, and the bare loop's concurrency
//!   --concurrency 48       BENCH_CONCURRENCY  requests in flight for setup and ITS updates
//!   --paced-rate 50        BENCH_PACED_RATE   updates per second in the paced latency phase
//!   --paced-count 500      BENCH_PACED_COUNT  objects updated in the paced phase (at most N)
//!   --inproc               BENCH_INPROC=1     run the controller in this process, not as
//!                                             the `status-router run` child process
//!
//! For each N, after an untimed setup (N Deployments in the WDS, Bindings of
//! 500 objects each asking for singleton status from one WEC, N WorkStatuses
//! with an initial status in the ITS), the phases are:
//!   A. start the controller; wait until every Deployment holds the initial
//!      status (first sync: a label write and a status write per object);
//!   B. burst: update every WorkStatus once, as fast as the ITS takes it;
//!      controller writes/s = N / (last WDS status seen - first update sent),
//!      latency per object = WDS status seen - ITS update acknowledged;
//!   C. paced: update `paced-count` WorkStatuses at `paced-rate`/s, far below
//!      saturation, for the steady-state latency;
//!   (the controller's counters, peak RSS (VmHWM) and CPU are read, then it stops)
//!   D. bare loop: the same JSON patch `add /status` through the status
//!      subresource as the controller, on the same N Deployments, with
//!      `workers` requests in flight; writes/s = N / (last ack - first sent);
//!   E. catch-up: with the controller stopped, update every WorkStatus, then
//!      start a fresh controller and time until every Deployment follows (no
//!      concurrent ITS load: the like-for-like comparison with D).
//!
//! Times "seen" are when this process's watch on the WDS namespace delivers
//! the Deployment with the new value (the watch runs through all phases).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use status_router::kubestellar::{
    Binding, ORIGIN_BINDING_LABEL, ORIGIN_WDS_LABEL, SINGLETON_STATUS_LABEL, WorkStatus, crds_yaml,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

const WDS_NAME: &str = "bench-wds";
const WEC: &str = "wec1";
const NAMESPACE: &str = "bench";
/// Objects per Binding: a Binding of 10,000 entries would approach etcd's 1.5 MiB limit.
const PER_BINDING: usize = 500;
/// A wait fails when no object makes progress for this long.
const STALL: Duration = Duration::from_secs(180);

// ---------------------------------------------------------------- options

#[derive(Clone, Debug)]
struct Options {
    ns: Vec<usize>,
    workers: usize,
    concurrency: usize,
    paced_rate: f64,
    paced_count: usize,
    inproc: bool,
}

fn options() -> anyhow::Result<Options> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut o = Options {
        ns: vec![1000, 10_000],
        workers: 16,
        concurrency: 48,
        paced_rate: 50.0,
        paced_count: 500,
        inproc: env("BENCH_INPROC").is_some_and(|v| v != "0"),
    };
    let mut set = |key: &str, value: &str| -> anyhow::Result<()> {
        match key {
            "n" => {
                o.ns = value
                    .split(',')
                    .map(|s| s.trim().replace('_', "").parse::<usize>())
                    .collect::<Result<_, _>>()
                    .with_context(|| format!("--n {value:?}: expected e.g. 1000,10000"))?;
                if o.ns.is_empty() || o.ns.contains(&0) {
                    bail!("--n {value:?}: need positive sizes");
                }
            }
            "workers" => o.workers = value.parse().context("--workers")?,
            "concurrency" => o.concurrency = value.parse().context("--concurrency")?,
            "paced-rate" => o.paced_rate = value.parse().context("--paced-rate")?,
            "paced-count" => o.paced_count = value.parse().context("--paced-count")?,
            _ => bail!("unknown option --{key}"),
        }
        Ok(())
    };
    for (var, key) in [
        ("BENCH_N", "n"),
        ("BENCH_WORKERS", "workers"),
        ("BENCH_CONCURRENCY", "concurrency"),
        ("BENCH_PACED_RATE", "paced-rate"),
        ("BENCH_PACED_COUNT", "paced-count"),
    ] {
        if let Some(value) = env(var) {
            set(key, &value)?;
        }
    }
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            // What `cargo bench` passes to a harness = false binary.
            "--bench" => {}
            "--inproc" => o.inproc = true,
            _ => {
                let Some(opt) = arg.strip_prefix("--") else {
                    bail!(
                        "unexpected argument {arg:?} (see the options in host/benches/controller.rs)"
                    );
                };
                let (key, value) = match opt.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (
                        opt.to_string(),
                        args.next()
                            .with_context(|| format!("--{opt} needs a value"))?,
                    ),
                };
                set(&key, &value)?;
            }
        }
    }
    o.workers = o.workers.max(1);
    o.concurrency = o.concurrency.max(1);
    Ok(o)
}

// ---------------------------------------------------------------- main

fn main() -> anyhow::Result<()> {
    let opts = options()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        println!(
            "controller throughput: N = {:?}, workers {}, setup/update concurrency {}, paced {} at {}/s, controller {}",
            opts.ns,
            opts.workers,
            opts.concurrency,
            opts.paced_count,
            opts.paced_rate,
            if opts.inproc {
                "in-process"
            } else {
                "`status-router run` child process"
            }
        );
        let t0 = Instant::now();
        let mut results = Vec::new();
        for &n in &opts.ns {
            let started = Instant::now();
            match run_size(&opts, n).await {
                Ok(mut r) => {
                    r.wall = started.elapsed();
                    print_result(&r);
                    results.push(r);
                }
                Err(e) => {
                    eprintln!("\nN = {n}: FAILED after {:.0?}: {e:#}", started.elapsed());
                    print_summary(&opts, &results);
                    return Err(e);
                }
            }
        }
        print_summary(&opts, &results);
        println!("\ntotal wall time {:.0?}", t0.elapsed());
        Ok(())
    })
}

// ---------------------------------------------------------------- one size

#[derive(Debug, Default)]
struct RunResult {
    n: usize,
    wall: Duration,
    setup: Duration,
    initial_sync: Duration,
    initial_counters: Counters,
    /// ITS updates acknowledged per second during the burst.
    its_rate: f64,
    burst_rate: f64,
    burst_span: Duration,
    burst_latency: Stats,
    paced_latency: Stats,
    paced_n: usize,
    counters: Counters,
    controller_hwm_kib: Option<u64>,
    /// The controller's resident set after phase C (steady state, all objects cached).
    controller_rss_kib: Option<u64>,
    bench_hwm_kib: (u64, u64),
    burst_cpu: CpuReport,
    bare_rate: f64,
    bare_seen_rate: f64,
    bare_cpu: CpuReport,
    catchup_from_start: Duration,
    catchup_rate: f64,
    catchup_counters: Counters,
    catchup_hwm_kib: Option<u64>,
    catchup_cpu: CpuReport,
}

async fn run_size(opts: &Options, n: usize) -> anyhow::Result<RunResult> {
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

// ---------------------------------------------------------------- objects

fn name(i: usize) -> String {
    format!("d-{i:05}")
}

fn index_of(name: &str) -> Option<usize> {
    name.strip_prefix("d-")?.parse().ok()
}

fn deployment(i: usize) -> Deployment {
    let name = name(i);
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}
    }))
    .expect("a valid Deployment")
}

fn binding(b: usize, objects: std::ops::Range<usize>) -> Binding {
    let entries: Vec<Value> = objects
        .map(|i| {
            json!({"group": "apps", "version": "v1", "resource": "deployments",
                   "namespace": NAMESPACE, "name": name(i), "resourceVersion": "1",
                   "wantSingletonReportedState": true})
        })
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "control.kubestellar.io/v1alpha1", "kind": "Binding",
        "metadata": {"name": format!("bench-{b}")},
        "spec": {"destinations": [{"clusterId": WEC}],
                 "workload": {"namespaceScope": entries}}
    }))
    .expect("a valid Binding")
}

fn work_status(i: usize) -> WorkStatus {
    serde_json::from_value(json!({
        "apiVersion": "control.kubestellar.io/v1alpha1", "kind": "WorkStatus",
        "metadata": {"name": format!("appsv1-deployment-{NAMESPACE}-{}", name(i)), "labels": {
            ORIGIN_WDS_LABEL: WDS_NAME,
            ORIGIN_BINDING_LABEL: format!("bench-{}", i / PER_BINDING)}},
        "spec": {"sourceRef": {"group": "apps", "version": "v1", "resource": "deployments",
                               "kind": "Deployment", "namespace": NAMESPACE, "name": name(i)}}
    }))
    .expect("a valid WorkStatus")
}

/// A Deployment's status as a WEC reports it; `available` marks the phase.
fn deployment_status(available: i64) -> Value {
    let t = "2025-01-01T00:00:00Z";
    json!({
        // The API server validates a Deployment's status: available <= ready <= replicas.
        "observedGeneration": 1, "replicas": available, "updatedReplicas": available,
        "readyReplicas": available, "availableReplicas": available,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
             "message": "Deployment has minimum availability.",
             "lastTransitionTime": t, "lastUpdateTime": t},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
             "message": "ReplicaSet has successfully progressed.",
             "lastTransitionTime": t, "lastUpdateTime": t}
        ]
    })
}

/// The WEC's agent reports object `i` with `availableReplicas: value`.
async fn report(api: &Api<WorkStatus>, i: usize, value: i64) -> anyhow::Result<()> {
    let patch = Patch::Merge(json!({"status": deployment_status(value)}));
    api.patch_status(
        &format!("appsv1-deployment-{NAMESPACE}-{}", name(i)),
        &PatchParams::default(),
        &patch,
    )
    .await
    .with_context(|| format!("report status of {}", name(i)))?;
    Ok(())
}

async fn create_namespace(client: &Client, name: &str) -> anyhow::Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": name}}))?,
    )
    .await?;
    Ok(())
}

/// Runs `f(0..n)` with at most `limit` in flight; fails on the first error.
async fn run_bounded<F, Fut>(n: usize, limit: usize, what: &str, f: F) -> anyhow::Result<()>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let t = Instant::now();
    stream::iter((0..n).map(|i| {
        let fut = f(i);
        async move { fut.await.with_context(|| format!("{what}: object {i}")) }
    }))
    .buffer_unordered(limit)
    .try_collect::<()>()
    .await?;
    eprintln!(
        "  {what}: {n} in {:.1?} ({:.0}/s, {limit} in flight)",
        t.elapsed(),
        n as f64 / t.elapsed().as_secs_f64()
    );
    Ok(())
}

// ---------------------------------------------------------------- the watch

/// When each Deployment was first seen (by this process's watch) holding the
/// value the current phase looks for, with our label.
struct Tracker {
    n: usize,
    state: Mutex<TrackState>,
    progress: Notify,
}

struct TrackState {
    listed: bool,
    target: i64,
    wanted: std::ops::Range<usize>,
    seen: Vec<Option<Instant>>,
    count: usize,
}

impl Tracker {
    fn new(n: usize) -> Arc<Self> {
        Arc::new(Self {
            n,
            state: Mutex::new(TrackState {
                listed: false,
                target: i64::MIN,
                wanted: 0..0,
                seen: vec![None; n],
                count: 0,
            }),
            progress: Notify::new(),
        })
    }

    /// Looks for `availableReplicas == target` on the objects `wanted` from now on.
    fn arm(&self, target: i64, wanted: std::ops::Range<usize>) {
        let mut s = self.state.lock().unwrap();
        s.target = target;
        s.wanted = wanted;
        s.seen = vec![None; self.n];
        s.count = 0;
    }

    fn seen(&self) -> Vec<Option<Instant>> {
        self.state.lock().unwrap().seen.clone()
    }

    async fn watch(self: Arc<Self>, api: Api<Deployment>) {
        let mut events = watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(event) = events.next().await {
            let now = Instant::now();
            match event {
                Ok(Event::InitApply(d) | Event::Apply(d)) => self.observe(&d, now),
                Ok(Event::InitDone) => {
                    self.state.lock().unwrap().listed = true;
                    self.progress.notify_waiters();
                }
                Ok(_) => {}
                Err(e) => eprintln!("  bench watch: {e} (the watcher retries)"),
            }
        }
    }

    fn observe(&self, d: &Deployment, now: Instant) {
        let Some(i) = index_of(&d.name_any()) else {
            return;
        };
        let available = d.status.as_ref().and_then(|s| s.available_replicas);
        let labelled = d.labels().contains_key(SINGLETON_STATUS_LABEL);
        let mut s = self.state.lock().unwrap();
        if labelled
            && available.map(i64::from) == Some(s.target)
            && s.wanted.contains(&i)
            && s.seen[i].is_none()
        {
            s.seen[i] = Some(now);
            s.count += 1;
            if s.count == s.wanted.len() {
                drop(s);
                self.progress.notify_waiters();
            }
        }
    }

    async fn wait_listed(&self) {
        loop {
            let notified = self.progress.notified();
            if self.state.lock().unwrap().listed {
                return;
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
        }
    }

    /// Waits until every wanted object was seen; fails after [`STALL`] without progress.
    async fn wait_all(&self, phase: &str, ctl: Option<&Ctl>) -> anyhow::Result<()> {
        let start = Instant::now();
        let mut last_progress = Instant::now();
        let mut last_count = usize::MAX;
        let mut last_print = Instant::now();
        loop {
            let notified = self.progress.notified();
            let (count, wanted) = {
                let s = self.state.lock().unwrap();
                (s.count, s.wanted.len())
            };
            if count == wanted {
                return Ok(());
            }
            if count != last_count {
                last_count = count;
                last_progress = Instant::now();
            }
            if last_print.elapsed() >= Duration::from_secs(10) {
                last_print = Instant::now();
                let counters = match ctl {
                    Some(ctl) => ctl
                        .counters()
                        .await
                        .map(|c| c.to_string())
                        .unwrap_or_default(),
                    None => String::new(),
                };
                eprintln!(
                    "  {phase}: {count}/{wanted} after {:.0?} {counters}",
                    start.elapsed()
                );
            }
            if last_progress.elapsed() > STALL {
                let counters = match ctl {
                    Some(ctl) => ctl
                        .counters()
                        .await
                        .map(|c| c.to_string())
                        .unwrap_or_default(),
                    None => String::new(),
                };
                bail!(
                    "{phase}: stalled at {count}/{wanted} for {STALL:?} (controller: {counters})"
                );
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), notified).await;
        }
    }
}

// ---------------------------------------------------------------- the controller

#[derive(Clone, Copy, Debug, Default)]
struct Counters {
    reconciles: u64,
    reconcile_errors: u64,
    policy_errors: u64,
    status_writes: u64,
    label_writes: u64,
}

impl Counters {
    fn minus(&self, o: &Counters) -> Counters {
        Counters {
            reconciles: self.reconciles - o.reconciles,
            reconcile_errors: self.reconcile_errors - o.reconcile_errors,
            policy_errors: self.policy_errors - o.policy_errors,
            status_writes: self.status_writes - o.status_writes,
            label_writes: self.label_writes - o.label_writes,
        }
    }

    fn parse(text: &str) -> Counters {
        let mut c = Counters::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((key, value)) = line.split_once(' ') else {
                continue;
            };
            let value: u64 = value.trim().parse().unwrap_or(0);
            match key {
                "status_router_reconciles_total" => c.reconciles = value,
                "status_router_reconcile_errors_total" => c.reconcile_errors = value,
                "status_router_policy_errors_total" => c.policy_errors = value,
                "status_router_status_writes_total" => c.status_writes = value,
                "status_router_label_writes_total" => c.label_writes = value,
                _ => {}
            }
        }
        c
    }
}

impl std::fmt::Display for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "status_writes {} label_writes {} reconciles {} reconcile_errors {} policy_errors {}",
            self.status_writes,
            self.label_writes,
            self.reconciles,
            self.reconcile_errors,
            self.policy_errors
        )
    }
}

/// The controller under test: the `status-router run` binary (default) or in-process.
enum Ctl {
    Child {
        child: Child,
        metrics: SocketAddr,
    },
    InProc {
        task: Option<tokio::task::JoinHandle<()>>,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        metrics: Arc<status_router::controller::metrics::Metrics>,
    },
}

impl Ctl {
    async fn start(
        opts: &Options,
        plane: &testenv::ControlPlane,
        wds: Client,
        its: Client,
    ) -> anyhow::Result<Ctl> {
        if opts.inproc {
            use status_router::controller::{Config, Controller};
            use status_router::policy::{DEFAULT_POLICY, PolicyEngine};
            let policy = PolicyEngine::new()?.load(DEFAULT_POLICY)?;
            let controller = Controller::new(
                wds,
                its,
                policy,
                Config {
                    wds_name: WDS_NAME.into(),
                    workers: opts.workers,
                },
            );
            let metrics = controller.metrics();
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let task = tokio::spawn(async move {
                if let Err(e) = controller
                    .run(async {
                        let _ = stopped.await;
                    })
                    .await
                {
                    eprintln!("controller: {e}");
                }
            });
            return Ok(Ctl::InProc {
                task: Some(task),
                stop: Some(stop),
                metrics,
            });
        }
        // Cargo builds the package's binary (release, for `cargo bench`) and says where.
        let binary = std::path::PathBuf::from(env!("CARGO_BIN_EXE_status-router"));
        if !binary.exists() {
            bail!(
                "{} is missing: build it with `cargo build --release -p status-router`",
                binary.display()
            );
        }
        let metrics = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?
        };
        let child = Command::new(&binary)
            .args(["run", "--wds-name", WDS_NAME, "--workers"])
            .arg(opts.workers.to_string())
            .arg("--metrics-addr")
            .arg(metrics.to_string())
            .arg("--kubeconfig")
            .arg(plane.kubeconfig_path())
            .env(
                "RUST_LOG",
                std::env::var("BENCH_RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("start {}", binary.display()))?;
        let ctl = Ctl::Child { child, metrics };
        // Until the metrics endpoint answers, the controller is not up.
        let t = Instant::now();
        while ctl.counters().await.is_err() {
            if t.elapsed() > Duration::from_secs(30) {
                bail!("status-router did not serve /metrics on {metrics} within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(ctl)
    }

    fn pid(&self) -> Option<u32> {
        match self {
            Ctl::Child { child, .. } => Some(child.id()),
            Ctl::InProc { .. } => None,
        }
    }

    async fn counters(&self) -> anyhow::Result<Counters> {
        use std::sync::atomic::Ordering::Relaxed;
        match self {
            Ctl::InProc { metrics: m, .. } => Ok(Counters {
                reconciles: m.reconciles.load(Relaxed),
                reconcile_errors: m.reconcile_errors.load(Relaxed),
                policy_errors: m.policy_errors.load(Relaxed),
                status_writes: m.status_writes.load(Relaxed),
                label_writes: m.label_writes.load(Relaxed),
            }),
            Ctl::Child { metrics, .. } => {
                let mut s = tokio::net::TcpStream::connect(metrics).await?;
                s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
                    .await?;
                let mut body = String::new();
                s.read_to_string(&mut body).await?;
                if !body.contains("status_router_") {
                    bail!("unexpected /metrics answer");
                }
                Ok(Counters::parse(&body))
            }
        }
    }

    /// Peak resident set of the controller process (this process when in-process).
    fn vm_hwm_kib(&self) -> Option<u64> {
        self.proc_status_kib("VmHWM")
    }

    fn proc_status_kib(&self, field: &str) -> Option<u64> {
        match self {
            Ctl::Child { child, .. } => proc_status_kib(&child.id().to_string(), field),
            Ctl::InProc { .. } => proc_status_kib("self", field),
        }
    }

    async fn stop(mut self) {
        match &mut self {
            Ctl::Child { child, .. } => {
                // SAFETY: kill(2) on the PID of a child we spawned and have not reaped.
                unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
                let t = Instant::now();
                while matches!(child.try_wait(), Ok(None)) {
                    if t.elapsed() > Duration::from_secs(10) {
                        let _ = child.kill();
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            Ctl::InProc { task, stop, .. } => {
                if let Some(stop) = stop.take() {
                    let _ = stop.send(());
                }
                if let Some(task) = task.take() {
                    let _ = task.await;
                }
            }
        }
    }
}

impl Drop for Ctl {
    fn drop(&mut self) {
        if let Ctl::Child { child, .. } = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ---------------------------------------------------------------- /proc

fn proc_status_kib(pid: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(&format!("{field}:")))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU seconds (user + system) of a process so far.
fn proc_cpu_secs(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some(ticks as f64 / hz)
}

/// Busy and total jiffies of the whole machine.
fn machine_cpu() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().next() else {
        return (0, 0);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// The processes whose CPU the bench accounts for.
#[derive(Clone)]
struct ProcSet(Vec<(String, u32)>);

#[derive(Clone, Debug, Default)]
struct CpuSample {
    at: Option<Instant>,
    procs: BTreeMap<String, f64>,
    machine: (u64, u64),
}

#[derive(Clone, Debug, Default)]
struct CpuReport {
    /// CPU seconds per process over the phase.
    procs: BTreeMap<String, f64>,
    /// The machine's busy fraction over the phase (all CPUs).
    machine_busy: f64,
    span: Duration,
}

impl ProcSet {
    fn of_plane(plane: &testenv::ControlPlane) -> ProcSet {
        let mut v = plane.pids();
        v.push(("bench".into(), std::process::id()));
        ProcSet(v)
    }

    fn with(&self, pid: Option<u32>, name: &str) -> ProcSet {
        let mut v = self.0.clone();
        if let Some(pid) = pid {
            v.push((name.into(), pid));
        }
        ProcSet(v)
    }

    fn without(&self, name: &str) -> ProcSet {
        ProcSet(self.0.iter().filter(|(n, _)| n != name).cloned().collect())
    }

    fn sample(&self) -> CpuSample {
        CpuSample {
            at: Some(Instant::now()),
            procs: self
                .0
                .iter()
                .filter_map(|(n, pid)| Some((n.clone(), proc_cpu_secs(*pid)?)))
                .collect(),
            machine: machine_cpu(),
        }
    }
}

impl CpuSample {
    fn since(&self, before: &CpuSample) -> CpuSample {
        CpuSample {
            at: self.at,
            procs: self
                .procs
                .iter()
                .map(|(n, v)| (n.clone(), v - before.procs.get(n).copied().unwrap_or(0.0)))
                .collect(),
            machine: (
                self.machine.0 - before.machine.0,
                self.machine.1 - before.machine.1,
            ),
        }
    }

    fn report(&self, span: Duration) -> CpuReport {
        CpuReport {
            procs: self.procs.clone(),
            machine_busy: self.machine.0 as f64 / self.machine.1.max(1) as f64,
            span,
        }
    }
}

impl std::fmt::Display for CpuReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.span.as_secs_f64().max(1e-9);
        let ours: f64 = self.procs.values().sum();
        for (name, cpu) in &self.procs {
            write!(f, "{name} {cpu:.1}s ({:.0}%), ", 100.0 * cpu / secs)?;
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        write!(
            f,
            "ours {ours:.1}s of {:.1}s x {cores} cores; machine busy {:.0}%",
            secs,
            100.0 * self.machine_busy
        )
    }
}

// ---------------------------------------------------------------- statistics

#[derive(Clone, Debug, Default)]
struct Stats {
    n: usize,
    p50: f64,
    p99: f64,
    max: f64,
    min: f64,
}

impl Stats {
    /// Milliseconds from each ITS acknowledgement to the WDS status seen.
    fn latencies(acks: &[Option<Instant>], seen: &[Option<Instant>]) -> Stats {
        let mut ms: Vec<f64> = acks
            .iter()
            .zip(seen)
            .filter_map(|(a, s)| {
                let (a, s) = ((*a)?, (*s)?);
                // Signed: the controller may beat the acknowledgement back to us.
                Some(if s >= a {
                    (s - a).as_secs_f64() * 1e3
                } else {
                    -(a - s).as_secs_f64() * 1e3
                })
            })
            .collect();
        ms.sort_by(f64::total_cmp);
        let pct = |p: f64| {
            if ms.is_empty() {
                return f64::NAN;
            }
            let rank = ((p / 100.0) * ms.len() as f64).ceil() as usize;
            ms[rank.clamp(1, ms.len()) - 1]
        };
        Stats {
            n: ms.len(),
            p50: pct(50.0),
            p99: pct(99.0),
            max: ms.last().copied().unwrap_or(f64::NAN),
            min: ms.first().copied().unwrap_or(f64::NAN),
        }
    }
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (min {:.1} ms, {} objects)",
            self.p50, self.p99, self.max, self.min, self.n
        )
    }
}

// ---------------------------------------------------------------- output

fn mib(kib: Option<u64>) -> String {
    kib.map_or("n/a".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

fn print_result(r: &RunResult) {
    println!(
        "N = {} done in {:.0?} (setup {:.0?}); controller peak RSS {} (RSS {} after C), catch-up controller {}; bench process VmHWM {} (VmRSS {})",
        r.n,
        r.wall,
        r.setup,
        mib(r.controller_hwm_kib),
        mib(r.controller_rss_kib),
        mib(r.catchup_hwm_kib),
        mib(Some(r.bench_hwm_kib.0)),
        mib(Some(r.bench_hwm_kib.1)),
    );
    println!("counters after A+B+C: {}", r.counters);
}

fn print_summary(opts: &Options, results: &[RunResult]) {
    if results.is_empty() {
        return;
    }
    let rss_note = if opts.inproc {
        "bench process, includes its own clients and watch"
    } else {
        "status-router child process"
    };
    println!("\n## Controller throughput ({} workers)\n", opts.workers);
    let header = [
        "",
        "first sync (A)",
        "ITS updates/s (B)",
        "controller writes/s (B)",
        "latency p50 / p99 / max (B)",
        "paced latency p50 / p99 / max (C)",
        "bare loop writes/s (D)",
        "controller / bare",
        "catch-up writes/s (E)",
        "catch-up / bare",
        "status / label writes",
        "errors",
        "peak RSS",
    ];
    println!("| {} |", header.join(" | "));
    println!("|{}|", vec!["---"; header.len()].join("|"));
    for r in results {
        let l = &r.burst_latency;
        let p = &r.paced_latency;
        let row = [
            format!("N = {}", r.n),
            format!(
                "{:.1} s ({:.0} objects/s)",
                r.initial_sync.as_secs_f64(),
                r.n as f64 / r.initial_sync.as_secs_f64()
            ),
            format!("{:.0}", r.its_rate),
            format!("{:.0}", r.burst_rate),
            format!("{:.0} / {:.0} / {:.0} ms", l.p50, l.p99, l.max),
            format!("{:.1} / {:.1} / {:.1} ms", p.p50, p.p99, p.max),
            format!("{:.0}", r.bare_rate),
            format!("{:.0}%", 100.0 * r.burst_rate / r.bare_rate),
            format!("{:.0}", r.catchup_rate),
            format!("{:.0}%", 100.0 * r.catchup_rate / r.bare_rate),
            format!("{} / {}", r.counters.status_writes, r.counters.label_writes),
            format!(
                "{} reconcile, {} policy",
                r.counters.reconcile_errors, r.counters.policy_errors
            ),
            mib(r.controller_hwm_kib),
        ];
        println!("| {} |", row.join(" | "));
    }
    println!(
        "\nlatency = WDS status seen on this process's watch - ITS update acknowledged; peak RSS: {rss_note} (VmHWM)"
    );
    println!(
        "targets: controller >= 90% of the bare loop's writes/s; p99 propagation < 100 ms at steady state"
    );
    for r in results {
        let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
        println!(
            "  N = {}: throughput burst {:.0}% ({}), catch-up {:.0}% ({}); p99 paced {:.1} ms ({}), p99 burst {:.0} ms ({})",
            r.n,
            100.0 * r.burst_rate / r.bare_rate,
            verdict(r.burst_rate >= 0.9 * r.bare_rate),
            100.0 * r.catchup_rate / r.bare_rate,
            verdict(r.catchup_rate >= 0.9 * r.bare_rate),
            r.paced_latency.p99,
            verdict(r.paced_latency.p99 < 100.0),
            r.burst_latency.p99,
            verdict(r.burst_latency.p99 < 100.0),
        );
    }
}
