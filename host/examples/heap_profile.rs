//! A heap profile of what the controller keeps per tracked object (issue
//! #12): it fills the controller's own structures, the index, the WDS object
//! cache and the record of its own writes, as the controller bench's run
//! does (N Deployments in Bindings of 500, one WorkStatus each, read from
//! the JSON the API servers send), and prints the live heap each one holds,
//! measured by dhat. No control plane: the same inputs every run.
//!
//!     cargo run --release -p status-router --example heap_profile -- [N]
//!
//! It also writes `dhat-heap.json` (every allocation site, for
//! <https://nnethercote.github.io/dh_view/dh_view.html>). The resident set
//! of the real controller, with kube's buffers and the allocator's own
//! overhead, is the controller bench's figure (BENCHMARKS.md).

use std::sync::Arc;

use serde_json::{Value, json};
use status_router::controller::index::{Index, ObjectKey};
use status_router::controller::wds::Wds;
use status_router::controller::wds::object_cache::WorkloadObject;
use status_router::controller::wds::own_writes::OwnWrites;
use status_router::kubestellar::{BindingSpec, RawWorkStatus, ReportedJson};
use status_router::runtime::metrics::Metrics;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const DEPLOYMENT: &str = include_str!("fixtures/heap-deployment.yaml");
const WORK_STATUS: &str = include_str!("fixtures/heap-workstatus.yaml");
const PER_BINDING: usize = 500;

/// The bench's Deployment status (`host/benches/controller/objects.rs`).
fn deployment_status(available: i64) -> Value {
    let t = "2025-01-01T00:00:00Z";
    json!({
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

fn name(i: usize) -> String {
    format!("d-{i:05}")
}

/// A fixture as the compact JSON an API server sends, for object `i`.
fn fixture(yaml: &str, i: usize) -> String {
    let mut value: Value = serde_yaml::from_str(yaml).expect("a valid fixture");
    value["status"] = deployment_status(1);
    value
        .to_string()
        .replace("NAME", &name(i))
        .replace("BINDING", &format!("bench-{}", i / PER_BINDING))
}

fn binding(b: usize, n: usize) -> BindingSpec {
    let entries: Vec<Value> = (b * PER_BINDING..((b + 1) * PER_BINDING).min(n))
        .map(|i| {
            json!({"group": "apps", "version": "v1", "resource": "deployments",
                   "namespace": "bench", "name": name(i), "resourceVersion": "1",
                   "wantSingletonReportedState": true})
        })
        .collect();
    serde_json::from_value(json!({"destinations": [{"clusterId": "wec1"}],
                                  "workload": {"namespaceScope": entries}}))
    .expect("a valid Binding spec")
}

fn key(i: usize) -> ObjectKey {
    ObjectKey::new("apps".into(), "deployments".into(), "bench".into(), name(i))
}

/// The live heap and block count now.
fn live() -> (u64, u64) {
    let stats = dhat::HeapStats::get();
    (stats.curr_bytes as u64, stats.curr_blocks as u64)
}

struct Row {
    what: &'static str,
    bytes: u64,
    blocks: u64,
}

/// Runs `fill`, keeping what it returns alive, and records the heap it grew by.
fn measure<T>(rows: &mut Vec<Row>, what: &'static str, fill: impl FnOnce() -> T) -> T {
    let before = live();
    let kept = fill();
    let after = live();
    rows.push(Row {
        what,
        bytes: after.0.saturating_sub(before.0),
        blocks: after.1.saturating_sub(before.1),
    });
    kept
}

fn main() -> anyhow::Result<()> {
    let n: usize = match std::env::args().nth(1) {
        Some(arg) => arg.replace('_', "").parse()?,
        None => 10_000,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let _guard = runtime.enter();
    // Inputs are made before the profile's baseline.
    let reports: Vec<String> = (0..n).map(|i| fixture(WORK_STATUS, i)).collect();
    let objects: Vec<String> = (0..n).map(|i| fixture(DEPLOYMENT, i)).collect();
    let bindings: Vec<BindingSpec> = (0..n.div_ceil(PER_BINDING))
        .map(|b| binding(b, n))
        .collect();
    // Never connects: the example only fills the cache.
    let config = kube::Config::new("http://127.0.0.1:9".parse()?);
    let client = kube::Client::try_from(config)?;

    let _profiler = dhat::Profiler::new_heap();
    let mut rows = Vec::new();
    let index = measure(&mut rows, "index: Bindings (clauses by object)", || {
        let mut index = Index::default();
        for (b, spec) in bindings.iter().enumerate() {
            index.apply_binding(&format!("bench-{b}"), spec);
        }
        index
    });
    let index = measure(&mut rows, "index: WorkStatuses (reports)", move || {
        let mut index = index;
        for text in &reports {
            let ws: RawWorkStatus = serde_json::from_str(text).expect("a WorkStatus");
            index.apply_report(&ws);
        }
        index
    });
    let wds = measure(&mut rows, "WDS object cache (metadata + status)", || {
        let wds = Wds::new(client, Arc::new(Metrics::default()));
        for (i, text) in objects.iter().enumerate() {
            let object: WorkloadObject = serde_json::from_str(text).expect("a Deployment");
            // As the workload watch does: under the index's own key.
            wds.cache_object(index.canonical(key(i)), object);
        }
        wds
    });
    let own = measure(&mut rows, "own writes (4 resourceVersions each)", || {
        let own = OwnWrites::default();
        for i in 0..n {
            for w in 0..4 {
                own.record(
                    &index.canonical(key(i)),
                    &(1_000_000 + 4 * i + w).to_string(),
                );
            }
        }
        own
    });
    // For comparison: the statuses as the JSON trees the index held before.
    let trees = measure(&mut rows, "(before: statuses as serde_json trees)", || {
        (0..n).map(|_| deployment_status(1)).collect::<Vec<_>>()
    });
    let texts = measure(&mut rows, "(now: statuses as text)", || {
        trees.iter().map(|t| t.status_text()).collect::<Vec<_>>()
    });

    println!("heap profile of the controller's state, N = {n} tracked objects (dhat, live bytes)");
    println!(
        "{:<42} {:>12} {:>10} {:>12} {:>10}",
        "part", "bytes", "blocks", "bytes/object", "blocks/obj"
    );
    let mut total = (0, 0);
    for row in &rows {
        println!(
            "{:<42} {:>12} {:>10} {:>12.0} {:>10.1}",
            row.what,
            row.bytes,
            row.blocks,
            row.bytes as f64 / n as f64,
            row.blocks as f64 / n as f64
        );
        if !row.what.starts_with('(') {
            total = (total.0 + row.bytes, total.1 + row.blocks);
        }
    }
    println!(
        "{:<42} {:>12} {:>10} {:>12.0} {:>10.1}",
        "total (without the comparison rows)",
        total.0,
        total.1,
        total.0 as f64 / n as f64,
        total.1 as f64 / n as f64
    );
    drop((index, wds, own, trees, texts));
    Ok(())
}
