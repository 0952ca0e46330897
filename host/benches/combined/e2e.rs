//! Part 3: the controller on a private control plane, serving N Deployments
//! x 2 WECs x 3 collectors; the time from a WorkStatus change to the
//! CombinedStatus that reflects it, seen by a watch.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::watcher::{self, Event};
use serde_json::{Value, json};
use status_router::controller::{Config, Controller};
use status_router::kubestellar::{BindingPolicy, CombinedStatus, StatusCollector, WorkStatus};
use status_router::policy::{DEFAULT_POLICY, PolicyEngine};
use tokio::sync::mpsc;

use super::{collector_specs, deployment, status};

const NS: &str = "bench";
const WECS: [&str; 2] = ["cluster1", "cluster2"];
const SAMPLES: usize = 200;
const IN_FLIGHT: usize = 16;

pub fn run(n: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        if let Err(e) = measure(n).await {
            eprintln!("e2e failed: {e:#}");
            std::process::exit(1);
        }
    });
}

fn report_name(i: usize) -> String {
    format!("appsv1-deployment-{NS}-web-{i}")
}

/// The SUM column of a CombinedStatus, if there.
fn sum_of(cs: &CombinedStatus) -> Option<String> {
    let r = cs.results.iter().find(|r| r.name == "sum")?;
    r.rows.first()?.columns.first()?.float.clone()
}

async fn measure(n: usize) -> anyhow::Result<()> {
    let plane = tokio::task::block_in_place(testenv::ControlPlane::start)?;
    let wds = plane.wds_client().await?;
    let its = plane.its_client().await?;
    let crds = status_router::kubestellar::crds_yaml();
    testenv::install_crds(&wds, &crds).await?;
    testenv::install_crds(&its, &crds).await?;
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NS}}))?;
    Api::<Namespace>::all(wds.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    for wec in WECS {
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": wec}}))?;
        Api::<Namespace>::all(its.clone())
            .create(&PostParams::default(), &ns)
            .await?;
    }
    let t = Instant::now();
    for (name, spec) in collector_specs() {
        let sc: StatusCollector = serde_json::from_value(json!({
            "apiVersion": "control.kubestellar.io/v1alpha1", "kind": "StatusCollector",
            "metadata": {"name": name}, "spec": spec}))?;
        Api::<StatusCollector>::all(wds.clone())
            .create(&PostParams::default(), &sc)
            .await?;
    }
    let bp: BindingPolicy =
        serde_json::from_value(json!({"metadata": {"name": "bench"}, "spec": {}}))?;
    let bp = Api::<BindingPolicy>::all(wds.clone())
        .create(&PostParams::default(), &bp)
        .await?;
    let bp_uid = bp.metadata.uid.unwrap_or_default();
    let deployments: Api<Deployment> = Api::namespaced(wds.clone(), NS);
    let uids: Vec<String> = stream::iter((0..n).map(|i| {
        let api = deployments.clone();
        async move {
            let d: Deployment = serde_json::from_value(deployment(i))?;
            let d = api.create(&PostParams::default(), &d).await?;
            anyhow::Ok(d.metadata.uid.unwrap_or_default())
        }
    }))
    .buffered(IN_FLIGHT)
    .try_collect()
    .await?;
    let clauses: Vec<Value> = (0..n)
        .map(|i| {
            json!({"group": "apps", "version": "v1", "resource": "deployments",
                        "namespace": NS, "name": format!("web-{i}"), "resourceVersion": "1",
                        "statusCollectors": ["available", "sum", "ready"]})
        })
        .collect();
    let binding: status_router::kubestellar::Binding = serde_json::from_value(json!({
        "apiVersion": "control.kubestellar.io/v1alpha1", "kind": "Binding",
        "metadata": {"name": "bench"},
        "spec": {"destinations": WECS.iter().map(|w| json!({"clusterId": w})).collect::<Vec<_>>(),
                 "workload": {"namespaceScope": clauses}}}))?;
    Api::<status_router::kubestellar::Binding>::all(wds.clone())
        .create(&PostParams::default(), &binding)
        .await?;
    stream::iter((0..n * 2).map(|k| {
        let its = its.clone();
        async move {
            let (i, wec) = (k / 2, WECS[k % 2]);
            let api: Api<WorkStatus> = Api::namespaced(its, wec);
            let ws: WorkStatus = serde_json::from_value(json!({
                "metadata": {"name": report_name(i), "namespace": wec},
                "spec": {"sourceRef": {"group": "apps", "version": "v1", "resource": "deployments",
                                       "kind": "Deployment", "name": format!("web-{i}"), "namespace": NS}}}))?;
            api.create(&PostParams::default(), &ws).await?;
            let patch = Patch::Merge(json!({"status": status(1)}));
            api.patch_status(&report_name(i), &PatchParams::default(), &patch).await?;
            anyhow::Ok(())
        }
    }))
    .buffer_unordered(IN_FLIGHT)
    .try_collect::<()>()
    .await?;
    println!(
        "\n3. end to end: setup of {n} Deployments, {} WorkStatuses, 3 collectors in {:.1?}",
        2 * n,
        t.elapsed()
    );

    // Every CombinedStatus version, as a watch sees it: (name, sum, when).
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, Option<String>, Instant)>();
    let api: Api<CombinedStatus> = Api::namespaced(wds.clone(), NS);
    let watch = tokio::spawn(async move {
        let mut events = watcher::watcher(api, watcher::Config::default()).boxed();
        while let Some(Ok(event)) = events.next().await {
            if let Event::Apply(cs) | Event::InitApply(cs) = event {
                let _ = tx.send((
                    cs.metadata.name.clone().unwrap_or_default(),
                    sum_of(&cs),
                    Instant::now(),
                ));
            }
        }
    });
    let policy = PolicyEngine::new()?.load(DEFAULT_POLICY)?;
    let config = Config {
        wds_name: "wds1".into(),
        workers: 4,
    };
    let controller = Controller::new(wds.clone(), its.clone(), policy, config);
    let metrics = controller.metrics();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(controller.run(async move {
        let _ = stopped.await;
    }));

    // First sync: every object's CombinedStatus with the sum 2.
    let start = Instant::now();
    let mut sums: HashMap<String, Option<String>> = HashMap::new();
    let two = Some("2".to_string());
    while sums.values().filter(|s| **s == two).count() < n {
        let (name, sum, _) = tokio::time::timeout(Duration::from_secs(300), rx.recv())
            .await?
            .ok_or_else(|| anyhow::anyhow!("the watch ended"))?;
        sums.insert(name, sum);
    }
    let first = start.elapsed();
    let evaluations = n * 2 * (2 + 1 + 1 + 1);
    println!(
        "first sync: {n} CombinedStatuses in {:.2?} ({:.0} objects/s, {:.0} evaluations/s incl. I/O)",
        first,
        n as f64 / first.as_secs_f64(),
        evaluations as f64 / first.as_secs_f64()
    );

    // Changes one at a time: WEC 2 of object i reports 2 available; wait for the sum 3.
    let mut latencies = Vec::with_capacity(SAMPLES);
    let step = (n / SAMPLES).max(1);
    for k in 0..SAMPLES.min(n) {
        let i = k * step;
        let name = format!("{}.{bp_uid}", uids[i]);
        let api: Api<WorkStatus> = Api::namespaced(its.clone(), WECS[1]);
        let patch = Patch::Merge(json!({"status": status(2)}));
        let t = Instant::now();
        api.patch_status(&report_name(i), &PatchParams::default(), &patch)
            .await?;
        loop {
            let (got, sum, at) = tokio::time::timeout(Duration::from_secs(60), rx.recv())
                .await?
                .ok_or_else(|| anyhow::anyhow!("the watch ended"))?;
            if got == name && sum.as_deref() == Some("3") {
                latencies.push(at - t);
                break;
            }
        }
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "WorkStatus change -> CombinedStatus update, {} samples one at a time: p50 {:.1?}, p99 {:.1?}, max {:.1?}",
        latencies.len(),
        pct(0.50),
        pct(0.99),
        latencies[latencies.len() - 1]
    );
    println!("controller: {:?}", metrics);
    let _ = stop.send(());
    let _ = task.await;
    watch.abort();
    Ok(())
}
