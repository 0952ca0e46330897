//! What the WIT contract itself costs per `decide`, against what the default
//! policy costs, in one run. See BENCHMARKS.md ("the contract's floor").
//!
//!     cargo bench -p integration-tests --bench contract_floor
//!
//! Three policies, from the least work to the most:
//! - `handwritten-noop` (`tests/guests/handwritten-noop.wat`): a core module
//!   written by hand with a bump `cabi_realloc`, answering `none` without
//!   reading. Its time is the call and the host lowering the request into
//!   guest memory (a `cabi_realloc` call per string and per list): the
//!   floor no policy can go below.
//! - `noop` (`tests/guests/noop`): the same in Rust with `wit-bindgen`, which
//!   also lifts the request into Rust values and frees them.
//! - `default`: the shipped policy.
//!
//! The requests shrink from the typical one to one with no string but the
//! object's six, so the cost of each string shows.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use integration_tests::policy_path;
use status_router::policy::{Limits, ObjectDoc, PolicyEngine, PolicyInstance, Request, RequestDoc};

/// The request of `host/benches/decide.rs`, and two smaller ones.
fn requests() -> [(&'static str, Request); 3] {
    let mut labelled = ObjectDoc::deployment("default", "web");
    for (k, v) in [("app", "web"), ("team", "edge"), ("tier", "frontend")] {
        labelled.labels.insert(k.into(), v.into());
    }
    let bare = ObjectDoc::deployment("default", "web");
    let typical = RequestDoc::new(labelled)
        .singleton(["wec1"])
        .multi_wec(["wec1", "wec2", "wec3"]);
    let no_labels = RequestDoc::new(bare.clone())
        .singleton(["wec1"])
        .multi_wec(["wec1", "wec2", "wec3"]);
    [
        ("typical (3 labels, 4 WECs)", Request::from(&typical)),
        ("no labels, 4 WECs", Request::from(&no_labels)),
        ("no labels, no WEC", Request::from(&RequestDoc::new(bare))),
    ]
}

fn bench(c: &mut Criterion) {
    // A 1 s deadline, as in `decide.rs`: the deadline is wall-clock time.
    let engine = PolicyEngine::with_limits(Limits {
        deadline: Duration::from_secs(1),
        ..Limits::default()
    })
    .expect("engine");
    let mut group = c.benchmark_group("contract floor");
    for stem in ["handwritten-noop", "noop", "default"] {
        let bytes = std::fs::read(policy_path(stem)).expect("the build script built it");
        let policy = engine.load(&bytes).expect("a valid policy");
        let mut instance = PolicyInstance::new(policy);
        for (name, request) in requests() {
            instance.decide(&request).expect("decides");
            group.bench_function(format!("{stem}, {name}"), |b| {
                b.iter(|| instance.decide(black_box(&request)).unwrap())
            });
        }
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
