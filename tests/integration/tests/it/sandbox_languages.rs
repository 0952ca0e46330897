//! The sandbox holds for Python and JavaScript guests too: a guest that
//! reads the clock, opens a file, reads entropy or opens a socket gets a
//! trap (an error value, never a crash nor a decision), and the next call on
//! the same `PolicyInstance` works. The probes are `tests/guests/python-sandbox`
//! and `tests/guests/js-sandbox`; both are built with every WASI import
//! stubbed, so the component imports nothing.
//!
//! Also here: a reused instance is recycled after N calls or near the memory
//! cap without failing a call, and a call that hits the cap because of what
//! earlier calls left behind is retried on a fresh instance.

use std::time::Duration;

use integration_tests::{load_policy, policy_path};
use status_router::policy::{
    Decision, Limits, ObjectDoc, PolicyEngine, PolicyError, PolicyInstance, Request, RequestDoc,
};

fn request(name: &str) -> Request {
    (&RequestDoc::new(ObjectDoc::deployment("default", name)).singleton(["wec1"])).into()
}

/// Python's runtime runs for a while before the stub traps; a debug host on a
/// busy machine needs more than the 10 ms default, and this is about traps.
fn limits() -> Limits {
    Limits {
        deadline: Duration::from_secs(2),
        ..Limits::default()
    }
}

fn assert_traps(policy: &mut PolicyInstance, probe: &str) {
    match policy.decide(&request(probe)) {
        Err(PolicyError::Trap { call, .. }) => assert_eq!(call, "decide", "{probe}"),
        other => panic!("{probe}: expected a trap, got {other:?}"),
    }
    assert_eq!(
        policy.decide(&request("fine")).unwrap(),
        Decision::None,
        "the call after {probe}"
    );
}

#[test]
fn a_python_guest_that_reaches_for_the_clock_a_file_entropy_or_a_socket_traps() {
    let mut policy = load_policy("python-sandbox", limits());
    assert_eq!(policy.decide(&request("fine")).unwrap(), Decision::None);
    for probe in ["clock", "file", "entropy", "socket"] {
        assert_traps(&mut policy, probe);
    }
    let object = (&ObjectDoc::deployment("default", "clock")).into();
    assert!(matches!(
        policy.aggregate(&object, &[]),
        Err(PolicyError::Trap {
            call: "aggregate",
            ..
        })
    ));
}

/// `Date.now()` calls a stubbed WASI clock and traps; QuickJS as built has no
/// entropy, file or socket API at all, so those throw, which traps `decide`.
#[test]
fn a_javascript_guest_that_reaches_for_the_clock_a_file_entropy_or_a_socket_traps() {
    let mut policy = load_policy("js-sandbox", limits());
    assert_eq!(policy.decide(&request("fine")).unwrap(), Decision::None);
    for probe in ["clock", "file", "entropy", "socket"] {
        assert_traps(&mut policy, probe);
    }
}

#[test]
fn an_instance_is_recycled_after_the_configured_calls_without_failing_one() {
    let mut policy = load_policy(
        "annotation-wecs",
        Limits {
            recycle_after_calls: 3,
            ..limits()
        },
    );
    for _ in 0..10 {
        assert!(matches!(
            policy.decide(&request("web")).unwrap(),
            Decision::Singleton(_)
        ));
    }
    assert_eq!(policy.recycled(), 3);
}

#[test]
fn an_instance_near_the_memory_cap_is_recycled_without_failing_a_call() {
    let mut probe = load_policy("annotation-wecs", limits());
    probe.decide(&request("web")).unwrap();
    let used = probe.memory_used().expect("a live instance");
    // A cap at which the instance's own memory is already past 3/4.
    let mut policy = load_policy(
        "annotation-wecs",
        Limits {
            memory: used * 5 / 4,
            ..limits()
        },
    );
    for _ in 0..4 {
        policy.decide(&request("web")).unwrap();
    }
    assert_eq!(policy.recycled(), 4);
}

/// `leak` keeps 4 MiB per call. With an 8 MiB cap, the first call leaves
/// ~5 MiB (under the 6 MiB mark, so no recycling); the second hits the cap on
/// the reused instance, is retried on a fresh one, and succeeds. On a fresh
/// instance whose cap cannot hold one leak, the cap is an error as ever.
#[test]
fn a_call_that_hits_the_cap_on_a_reused_instance_is_retried_on_a_fresh_one() {
    let engine = PolicyEngine::with_limits(Limits {
        memory: 8 << 20,
        ..limits()
    })
    .unwrap();
    let mut policy = PolicyInstance::new(engine.load_file(policy_path("misbehaving")).unwrap());
    for _ in 0..3 {
        assert_eq!(policy.decide(&request("leak")).unwrap(), Decision::None);
    }
    let engine = PolicyEngine::with_limits(Limits {
        memory: 4 << 20,
        ..limits()
    })
    .unwrap();
    let mut small = PolicyInstance::new(engine.load_file(policy_path("misbehaving")).unwrap());
    assert!(matches!(
        small.decide(&request("leak")),
        Err(PolicyError::MemoryCap { .. })
    ));
}
