//! A policy that misbehaves on request, for the host's sandbox tests.
//!
//! The object's name chooses the behaviour of `decide` and `aggregate`:
//! `loop` spins forever, `oom` allocates until memory runs out, `leak` keeps
//! 4 MiB per call, `trap` panics
//! (a Wasm trap), and anything else answers `none` / `{}` normally, so a test
//! can check that the next call after a failure still works.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "status-policy",
});

use exports::kubestellar::status_policy::policy::{
    Decision, Guest, ReportedStatus, Request, WorkloadRef,
};

struct Misbehaving;

fn misbehave(name: &str) {
    match name {
        "loop" => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        "oom" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        "trap" => panic!("asked to trap"),
        // Keeps 4 MiB per call, as a leaky guest would.
        "leak" => std::mem::forget(std::hint::black_box(vec![1u8; 4 << 20])),
        _ => {}
    }
}

impl Guest for Misbehaving {
    fn decide(req: Request) -> Decision {
        misbehave(&req.object.name);
        Decision::None
    }

    fn aggregate(object: WorkloadRef, _reported: Vec<ReportedStatus>) -> Result<String, String> {
        misbehave(&object.name);
        if object.name == "not-json" {
            return Ok("[1, 2]".into());
        }
        Ok("{}".into())
    }
}

export!(Misbehaving);
