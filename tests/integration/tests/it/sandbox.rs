//! The policy sandbox: a guest that loops, exhausts memory or traps yields an
//! error, never a crash and never a decision, and the next call still works.

use std::time::Duration;

use integration_tests::policy_path;
use status_router::policy::{
    Decision, Limits, ObjectDoc, PolicyEngine, PolicyError, PolicyInstance, RequestDoc,
};

fn instance(limits: Limits) -> PolicyInstance {
    let engine = PolicyEngine::with_limits(limits).expect("engine");
    let policy = engine
        .load_file(policy_path("misbehaving"))
        .expect("load the misbehaving policy");
    PolicyInstance::new(policy)
}

fn request(name: &str) -> status_router::policy::Request {
    (&RequestDoc::new(ObjectDoc::deployment("default", name)).singleton(["wec1"])).into()
}

#[test]
fn a_looping_guest_is_stopped_by_the_deadline_and_the_next_call_works() {
    let limits = Limits {
        deadline: Duration::from_millis(20),
        ..Limits::default()
    };
    let mut policy = instance(limits);
    match policy.decide(&request("loop")) {
        Err(PolicyError::Deadline { call, limit }) => {
            assert_eq!(call, "decide");
            assert_eq!(limit, Duration::from_millis(20));
        }
        other => panic!("expected a deadline error, got {other:?}"),
    }
    assert_eq!(policy.decide(&request("fine")).unwrap(), Decision::None);
}

#[test]
fn a_memory_hungry_guest_is_stopped_by_the_cap_and_the_next_call_works() {
    // A generous deadline: filling 8 MiB takes a few milliseconds in a debug
    // build, and this test is about the cap, not the clock.
    let limits = Limits {
        memory: 8 << 20,
        deadline: Duration::from_secs(5),
        ..Limits::default()
    };
    let mut policy = instance(limits);
    match policy.decide(&request("oom")) {
        Err(PolicyError::MemoryCap { call, limit }) => {
            assert_eq!(call, "decide");
            assert_eq!(limit, 8 << 20);
        }
        other => panic!("expected a memory cap error, got {other:?}"),
    }
    assert_eq!(policy.decide(&request("fine")).unwrap(), Decision::None);
}

#[test]
fn a_trapping_guest_yields_an_error_and_the_next_call_works() {
    let mut policy = instance(Limits::default());
    match policy.decide(&request("trap")) {
        Err(PolicyError::Trap { call, message }) => {
            assert_eq!(call, "decide");
            assert!(message.contains("unreachable"), "{message}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    assert_eq!(policy.decide(&request("fine")).unwrap(), Decision::None);
}

#[test]
fn aggregate_failures_are_errors_too() {
    let mut policy = instance(Limits::default());
    let object = (&ObjectDoc::deployment("default", "trap")).into();
    assert!(matches!(
        policy.aggregate(&object, &[]),
        Err(PolicyError::Trap {
            call: "aggregate",
            ..
        })
    ));
    let object = (&ObjectDoc::deployment("default", "not-json")).into();
    match policy.aggregate(&object, &[]) {
        Err(PolicyError::BadAggregate(text)) => assert_eq!(text, "[1, 2]"),
        other => panic!("expected a bad aggregate, got {other:?}"),
    }
    let object = (&ObjectDoc::deployment("default", "fine")).into();
    assert_eq!(
        policy.aggregate(&object, &[]).unwrap(),
        Ok(serde_json::json!({}))
    );
}

#[test]
fn failures_in_one_instance_do_not_disturb_another_on_the_same_engine() {
    let engine = PolicyEngine::new().unwrap();
    let policy = engine.load_file(policy_path("misbehaving")).unwrap();
    let mut failing = PolicyInstance::new(policy.clone());
    let mut healthy = PolicyInstance::new(policy);
    assert_eq!(healthy.decide(&request("fine")).unwrap(), Decision::None);
    assert!(failing.decide(&request("trap")).is_err());
    assert!(failing.decide(&request("loop")).is_err());
    assert_eq!(healthy.decide(&request("fine")).unwrap(), Decision::None);
}
