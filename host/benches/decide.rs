//! The cost of a routing decision: the embedded default policy (Wasm) with a
//! reused instance, with a fresh instance per call, and the native table, plus
//! an aggregation of two Deployment statuses. See BENCHMARKS.md.
//!
//!     cargo bench -p status-router --bench decide

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use status_router::policy::{
    DEFAULT_POLICY, Decision, Limits, ObjectDoc, PolicyEngine, PolicyInstance, ReportedStatus,
    Request, RequestDoc, WorkloadRef, native,
};

/// A Deployment with three labels, as the controller sees it.
fn object() -> ObjectDoc {
    let mut object = ObjectDoc::deployment("default", "web");
    for (k, v) in [("app", "web"), ("team", "edge"), ("tier", "frontend")] {
        object.labels.insert(k.into(), v.into());
    }
    object
}

/// Both flags, singleton [wec1], multi [wec1, wec2, wec3].
fn request_doc() -> RequestDoc {
    RequestDoc::new(object())
        .singleton(["wec1"])
        .multi_wec(["wec1", "wec2", "wec3"])
}

fn bench(c: &mut Criterion) {
    // The default limits but a 1 s deadline: the deadline is wall-clock, and on
    // a loaded machine a benchmark thread descheduled for 10 ms (the default)
    // during one of a million calls fails the run. Its value costs nothing per
    // call (one `set_epoch_deadline` either way).
    let engine = PolicyEngine::with_limits(Limits {
        deadline: Duration::from_secs(1),
        ..Limits::default()
    })
    .expect("engine");
    let policy = engine.load(DEFAULT_POLICY).expect("the default policy");
    let doc = request_doc();
    let request = Request::from(&doc);
    let expected = Decision::MultiWec(vec!["wec1".into(), "wec2".into(), "wec3".into()]);

    // Every variant gives the same answer before it is timed.
    let mut reused = PolicyInstance::new(policy.clone());
    assert_eq!(reused.decide(&request).unwrap(), expected);
    assert_eq!(native::decide(&request), expected);

    let mut group = c.benchmark_group("decide");
    group.bench_function("wasm, reused instance", |b| {
        b.iter(|| reused.decide(black_box(&request)).unwrap())
    });
    group.bench_function("wasm, fresh instance per call", |b| {
        b.iter(|| {
            PolicyInstance::new(black_box(&policy).clone())
                .decide(black_box(&request))
                .unwrap()
        })
    });
    group.bench_function("native table", |b| {
        b.iter(|| native::decide(black_box(&request)))
    });
    group.bench_function("request build + wasm, reused instance", |b| {
        b.iter(|| reused.decide(&Request::from(black_box(&doc))).unwrap())
    });
    group.finish();

    let object = WorkloadRef::from(&doc.object);
    let reported = [
        ("wec1", r#"{"replicas":3,"readyReplicas":3,"availableReplicas":2,"updatedReplicas":3,"observedGeneration":7}"#),
        ("wec2", r#"{"replicas":3,"readyReplicas":1,"availableReplicas":1,"updatedReplicas":2,"observedGeneration":6}"#),
    ]
    .map(|(wec, status)| ReportedStatus {
        wec: wec.into(),
        status: status.into(),
    });
    let status = reused.aggregate(&object, &reported).unwrap().unwrap();
    assert_eq!(status["readyReplicas"], 1);
    c.bench_function("aggregate/wasm, reused instance, two Deployments", |b| {
        b.iter(|| {
            reused
                .aggregate(black_box(&object), black_box(&reported))
                .unwrap()
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
