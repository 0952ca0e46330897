//! The cost of CombinedStatuses, in one run (figures in BENCHMARKS.md):
//!
//! 1. one evaluation of a compiled CEL expression against parse, check and
//!    evaluate on every call (KubeStellar's way), for three collectors;
//! 2. the offline computation for 1,000 objects x 2 WECs x 3 collectors
//!    (evaluations per second, row binding included);
//! 3. with `--e2e`, on a private control plane: the controller serving 1,000
//!    Deployments x 2 WECs x 3 collectors, and the time from a WorkStatus
//!    change to the CombinedStatus update (p50, p99).
//!
//!     cargo bench -p status-router --bench combined [-- --e2e] [-- --objects N]

mod e2e;

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use status_router::collector::compute;
use status_router::collector::engine::{CelEngine, CelProgram, Engine, Returned};
use status_router::collector::{self, Collector};
use status_router::kubestellar::StatusCollectorSpec;

/// The three collectors: a filtered select, a sum, and a grouped count.
pub fn collector_specs() -> Vec<(&'static str, Value)> {
    vec![
        (
            "available",
            json!({"filter": "obj.spec.replicas == returned.status.availableReplicas",
                   "select": [{"name": "wec", "def": "inventory.name"}], "limit": 20}),
        ),
        (
            "sum",
            json!({"combinedFields": [{"name": "sum", "type": "SUM",
                                       "subject": "returned.status.availableReplicas"}], "limit": 20}),
        ),
        (
            "ready",
            json!({"groupBy": [{"name": "ready", "def":
                       "returned.status.conditions.exists(c, c.type == 'Available' && c.status == 'True')"}],
                   "combinedFields": [{"name": "n", "type": "COUNT"}], "limit": 20}),
        ),
    ]
}

pub fn compile_all(engine: &CelEngine) -> Vec<Collector<CelProgram>> {
    collector_specs()
        .into_iter()
        .map(|(name, spec)| {
            let spec: StatusCollectorSpec = serde_json::from_value(spec).expect("a spec");
            collector::compile(engine, name, 1, &spec).expect("valid")
        })
        .collect()
}

pub fn deployment(i: usize) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": format!("web-{i}"), "namespace": "bench", "uid": format!("u-{i}"),
                        "labels": {"app": "web"}},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                                 "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}}}})
}

pub fn status(available: i64) -> Value {
    json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": available,
           "availableReplicas": available,
           "conditions": [
               {"type": "Available", "status": if available > 0 { "True" } else { "False" },
                "reason": "MinimumReplicasAvailable", "lastTransitionTime": "2026-01-01T00:00:00Z"},
               {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                "lastTransitionTime": "2026-01-01T00:00:00Z"}]})
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return; // `cargo bench -- --list` asks for criterion-style names: none
    }
    let objects = args
        .iter()
        .position(|a| a == "--objects")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000usize);
    println!("combined bench, {}", now());
    micro();
    offline(objects);
    if args.iter().any(|a| a == "--e2e") {
        e2e::run(objects);
    }
}

pub fn now() -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    out.unwrap_or_default()
}

/// The median of `rounds` timings of `iters` calls, in ns per call.
fn per_call(rounds: usize, iters: usize, mut f: impl FnMut()) -> f64 {
    let mut samples: Vec<f64> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iters {
                f();
            }
            start.elapsed().as_nanos() as f64 / iters as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn micro() {
    let engine = CelEngine::default();
    let obj = engine.object(&deployment(0));
    let status = status(1);
    let returned = Returned {
        wec: "cluster1",
        status: &status,
        updated: None,
    };
    let row = engine.row(&obj, &returned);
    println!(
        "\n1. one evaluation: compiled once vs parse+check+evaluate per call (median of 15 rounds)"
    );
    println!(
        "{:<70} {:>12} {:>16} {:>8}",
        "expression", "compiled", "compile per call", "ratio"
    );
    for source in [
        "obj.spec.replicas == returned.status.availableReplicas",
        "returned.status.availableReplicas",
        "returned.status.conditions.exists(c, c.type == 'Available' && c.status == 'True')",
    ] {
        let program = engine.compile(source).expect("compiles");
        let want = engine.evaluate(&program, &row).expect("evaluates");
        let compiled = per_call(15, 20_000, || {
            black_box(
                engine
                    .evaluate(black_box(&program), black_box(&row))
                    .unwrap(),
            );
        });
        let per_call_compile = per_call(15, 2_000, || {
            let p = engine.compile(black_box(source)).unwrap();
            let got = engine.evaluate(&p, black_box(&row)).unwrap();
            debug_assert_eq!(got, want);
            black_box(got);
        });
        println!(
            "{:<70} {:>9.0} ns {:>13.0} ns {:>7.1}x",
            source.chars().take(70).collect::<String>(),
            compiled,
            per_call_compile,
            per_call_compile / compiled
        );
    }
    let bind = per_call(15, 5_000, || {
        black_box(engine.row(black_box(&obj), black_box(&returned)));
    });
    println!(
        "binding one row's variables (per object and WEC, shared by all collectors): {bind:.0} ns"
    );
}

fn offline(objects: usize) {
    let engine = CelEngine::default();
    let collectors = compile_all(&engine);
    let docs: Vec<Value> = (0..objects).map(deployment).collect();
    let statuses = [status(1), status(0)];
    let wecs = ["cluster1", "cluster2"];
    // Evaluations per pass: per object, WEC and collector, its filter (if
    // any) plus its columns.
    let per_row: usize = collectors
        .iter()
        .map(|c| usize::from(c.filter.is_some()) + c.column_names().len())
        .sum();
    let evaluations = objects * wecs.len() * per_row;
    let mut passes = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        for doc in &docs {
            let object = engine.object(doc);
            let rows: Vec<_> = wecs
                .iter()
                .zip(&statuses)
                .map(|(wec, status)| {
                    let returned = Returned {
                        wec,
                        status,
                        updated: None,
                    };
                    (wec.to_string(), engine.row(&object, &returned))
                })
                .collect();
            for c in &collectors {
                black_box(compute::evaluate(&engine, c, &rows));
            }
        }
        passes.push(start.elapsed());
    }
    passes.sort();
    let median: Duration = passes[passes.len() / 2];
    println!(
        "\n2. offline: {objects} objects x 2 WECs x 3 collectors = {evaluations} evaluations per pass; \
         median of 5 passes {:.1} ms = {:.0} evaluations/s ({:.1} us per object)",
        median.as_secs_f64() * 1e3,
        evaluations as f64 / median.as_secs_f64(),
        median.as_secs_f64() * 1e6 / objects as f64
    );
}
