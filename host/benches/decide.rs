//! The cost of a routing decision: the embedded default policy (Wasm) with a
//! reused instance, with a fresh instance per call, and the native table, plus
//! an aggregation of two Deployment statuses, and `aggregate` per kind: each
//! kind with a rule of its own against the generic rules on the same two
//! reports (the same statuses sent as a custom kind). See BENCHMARKS.md.
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
    bench_kinds(c, &mut reused);
}

/// Two realistic reports per kind with a rule of its own: (group, kind,
/// resource, [wec1's status, wec2's status]).
const KIND_REPORTS: &[(&str, &str, &str, [&str; 2])] = &[
    (
        "apps",
        "Deployment",
        "deployments",
        [
            r#"{"observedGeneration":7,"replicas":3,"updatedReplicas":3,"readyReplicas":3,"availableReplicas":3,"conditions":[{"type":"Available","status":"True","lastUpdateTime":"2026-01-01T00:00:00Z","lastTransitionTime":"2026-01-01T00:00:00Z","reason":"MinimumReplicasAvailable","message":"Deployment has minimum availability."},{"type":"Progressing","status":"True","lastUpdateTime":"2026-01-01T00:00:00Z","lastTransitionTime":"2026-01-01T00:00:00Z","reason":"NewReplicaSetAvailable","message":"ReplicaSet \"web-5d8f\" has successfully progressed."}]}"#,
            r#"{"observedGeneration":7,"replicas":3,"updatedReplicas":3,"readyReplicas":1,"availableReplicas":1,"unavailableReplicas":2,"conditions":[{"type":"Available","status":"False","lastUpdateTime":"2026-01-02T00:00:00Z","lastTransitionTime":"2026-01-02T00:00:00Z","reason":"MinimumReplicasUnavailable","message":"Deployment does not have minimum availability."},{"type":"Progressing","status":"True","lastUpdateTime":"2026-01-02T00:00:00Z","lastTransitionTime":"2026-01-01T00:00:00Z","reason":"ReplicaSetUpdated","message":"ReplicaSet \"web-5d8f\" is progressing."}]}"#,
        ],
    ),
    (
        "apps",
        "ReplicaSet",
        "replicasets",
        [
            r#"{"replicas":3,"fullyLabeledReplicas":3,"readyReplicas":3,"availableReplicas":3,"observedGeneration":2}"#,
            r#"{"replicas":3,"fullyLabeledReplicas":3,"readyReplicas":1,"availableReplicas":1,"observedGeneration":2,"conditions":[{"type":"ReplicaFailure","status":"True","lastTransitionTime":"2026-01-02T00:00:00Z","reason":"FailedCreate","message":"pods \"web-5d8f-x\" is forbidden: exceeded quota"}]}"#,
        ],
    ),
    (
        "apps",
        "DaemonSet",
        "daemonsets",
        [
            r#"{"currentNumberScheduled":10,"numberMisscheduled":0,"desiredNumberScheduled":10,"numberReady":10,"observedGeneration":3,"updatedNumberScheduled":10,"numberAvailable":10}"#,
            r#"{"currentNumberScheduled":5,"numberMisscheduled":1,"desiredNumberScheduled":5,"numberReady":3,"observedGeneration":3,"updatedNumberScheduled":4,"numberAvailable":3,"numberUnavailable":2}"#,
        ],
    ),
    (
        "apps",
        "StatefulSet",
        "statefulsets",
        [
            r#"{"observedGeneration":2,"replicas":3,"readyReplicas":3,"currentReplicas":3,"updatedReplicas":3,"currentRevision":"db-5d8f","updateRevision":"db-5d8f","collisionCount":0,"availableReplicas":3}"#,
            r#"{"observedGeneration":2,"replicas":3,"readyReplicas":2,"currentReplicas":2,"updatedReplicas":1,"currentRevision":"db-5d8f","updateRevision":"db-6a1c","collisionCount":0,"availableReplicas":2}"#,
        ],
    ),
    (
        "batch",
        "Job",
        "jobs",
        [
            r#"{"startTime":"2026-01-01T00:00:00Z","completionTime":"2026-01-01T00:01:00Z","succeeded":1,"conditions":[{"type":"Complete","status":"True","lastProbeTime":"2026-01-01T00:01:00Z","lastTransitionTime":"2026-01-01T00:01:00Z"}]}"#,
            r#"{"startTime":"2026-01-01T00:00:00Z","active":1}"#,
        ],
    ),
];

/// `aggregate` per kind, and the generic rules on the same reports (the
/// object sent as a custom kind, `example.com/Gadget`), in one group so that
/// their figures come from one run.
fn bench_kinds(c: &mut Criterion, instance: &mut PolicyInstance) {
    let mut group = c.benchmark_group("aggregate per kind");
    for (api_group, kind, resource, [one, two]) in KIND_REPORTS {
        let reported = [("wec1", one), ("wec2", two)].map(|(wec, status)| ReportedStatus {
            wec: wec.into(),
            status: status.to_string(),
        });
        let object = |group: &str, kind: &str, resource: &str| WorkloadRef {
            group: group.into(),
            version: "v1".into(),
            resource: resource.into(),
            kind: kind.into(),
            namespace: Some("default".into()),
            name: "web".into(),
            labels: vec![],
            annotations: vec![],
        };
        let own = object(api_group, kind, resource);
        let generic = object("example.com", "Gadget", "gadgets");
        // The two rules give different statuses before they are timed.
        let with_own = instance.aggregate(&own, &reported).unwrap().unwrap();
        let with_generic = instance.aggregate(&generic, &reported).unwrap().unwrap();
        assert_ne!(with_own, with_generic, "{kind}");
        group.bench_function(format!("{kind}, its own rule"), |b| {
            b.iter(|| {
                instance
                    .aggregate(black_box(&own), black_box(&reported))
                    .unwrap()
            })
        });
        group.bench_function(format!("{kind}, generic rules"), |b| {
            b.iter(|| {
                instance
                    .aggregate(black_box(&generic), black_box(&reported))
                    .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
