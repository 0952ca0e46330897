//! One run over each policy language (Rust default, Python `ready-sum`, JS
//! `annotation-wecs`): compile time, load from the compiled cache,
//! instantiate, `decide` and `aggregate` medians on a reused instance, and a
//! swap (validation, activation, first decision of a fresh instance) with and
//! without the compiled cache. Prints a Markdown table for BENCHMARKS.md.
//!
//!     cargo xtask build-policies
//!     cargo bench -p status-router --bench languages
//!
//! (`STATUS_ROUTER_POLICY_DIR=DIR` reads the components from DIR instead.)
//!
//! Medians, since the machine may be shared: a run on a busy host shows it in
//! the spread, which is printed too (p10-p90).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use status_router::hotswap::Validator;
use status_router::policy::active::ActivePolicy;
use status_router::policy::{
    CompiledCache, DEFAULT_POLICY, ObjectDoc, PolicyEngine, PolicyError, PolicyInstance,
    ReportedStatus, RequestDoc,
};

const CALLS: usize = 20_000;
const INSTANTIATIONS: usize = 200;
const SWAPS: usize = 5;

/// `$STATUS_ROUTER_POLICY_DIR`, else `cargo xtask build-policies`' output dir.
fn policies_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("STATUS_ROUTER_POLICY_DIR") {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| xtask::workspace_root().join("target"));
    target.join("policies")
}

fn stats(mut v: Vec<Duration>) -> (Duration, Duration, Duration) {
    v.sort();
    let at = |q: f64| v[((v.len() - 1) as f64 * q) as usize];
    (at(0.5), at(0.1), at(0.9))
}

fn fmt((median, p10, p90): (Duration, Duration, Duration)) -> String {
    format!("{median:.1?} ({p10:.1?}-{p90:.1?})")
}

fn main() {
    let dir = policies_dir();
    let modules: Vec<(&str, Vec<u8>)> = vec![
        ("Rust (default)", DEFAULT_POLICY.to_vec()),
        (
            "Python (ready-sum)",
            std::fs::read(dir.join("ready-sum.wasm")).expect("cargo xtask build-policies first"),
        ),
        (
            "JavaScript (annotation-wecs)",
            std::fs::read(dir.join("annotation-wecs.wasm"))
                .expect("cargo xtask build-policies first"),
        ),
    ];
    let req = (&RequestDoc::new(ObjectDoc::deployment("default", "web"))
        .singleton(["wec1"])
        .multi_wec(["wec1", "wec2", "wec3"]))
        .into();
    let object = (&ObjectDoc::deployment("default", "web")).into();
    let reported: Vec<ReportedStatus> = ["wec1", "wec2", "wec3"]
        .iter()
        .map(|w| ReportedStatus {
            wec: w.to_string(),
            status: r#"{"replicas":3,"readyReplicas":2,"availableReplicas":2,"updatedReplicas":3,"observedGeneration":4,"conditions":[{"type":"Available","status":"True","reason":"MinimumReplicasAvailable"}]}"#.into(),
        })
        .collect();

    println!(
        "| policy | size | compile | cached load | instantiate | decide | aggregate (3 WECs) | swap, no cache | swap, cached |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (name, bytes) in &modules {
        let engine = PolicyEngine::new().unwrap();
        let cache_dir =
            std::env::temp_dir().join(format!("sr-bench-languages-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&cache_dir);
        let cache = CompiledCache::new(&cache_dir);

        let start = Instant::now();
        let (policy, cached) = engine.load_cached(bytes, Some(&cache)).unwrap();
        let compile = start.elapsed();
        assert!(!cached);
        let start = Instant::now();
        let (_, cached) = engine.load_cached(bytes, Some(&cache)).unwrap();
        let cached_load = start.elapsed();
        assert!(cached);

        // Instantiate: a fresh instance's first call, less a reused instance's call.
        let mut reused = PolicyInstance::new(policy.clone());
        reused.decide(&req).unwrap();
        // A first call that misses the deadline twice (the host's retry
        // included) on a busy machine is counted and printed, not fatal: the
        // figure is the time of those that made it.
        let mut firsts = Vec::new();
        let mut missed = 0;
        for _ in 0..INSTANTIATIONS {
            let mut fresh = PolicyInstance::new(policy.clone());
            let start = Instant::now();
            match fresh.decide(&req) {
                Ok(_) => firsts.push(start.elapsed()),
                Err(PolicyError::Deadline { .. }) => missed += 1,
                Err(e) => panic!("{name}: first call of a fresh instance: {e}"),
            }
        }
        assert!(
            !firsts.is_empty(),
            "{name}: every first call missed the deadline"
        );
        if missed > 0 {
            eprintln!("{name}: {missed} of {INSTANTIATIONS} first calls missed the deadline twice");
        }
        let mut decides = Vec::with_capacity(CALLS);
        for _ in 0..CALLS {
            let start = Instant::now();
            std::hint::black_box(reused.decide(std::hint::black_box(&req)).unwrap());
            decides.push(start.elapsed());
        }
        let mut aggregates = Vec::with_capacity(CALLS / 4);
        for _ in 0..CALLS / 4 {
            let start = Instant::now();
            std::hint::black_box(reused.aggregate(&object, &reported).unwrap().unwrap());
            aggregates.push(start.elapsed());
        }
        let decide = stats(decides);
        let first = stats(firsts);
        let instantiate = (
            first.0.saturating_sub(decide.0),
            first.1.saturating_sub(decide.0),
            first.2.saturating_sub(decide.0),
        );

        // A swap: validate (compile, or the cache), activate, first decision.
        let swap = |cache: Option<CompiledCache>| {
            let validator = Validator::new(engine.clone(), cache, None, None).unwrap();
            let active = ActivePolicy::new(
                validator
                    .validate("builtin:default", DEFAULT_POLICY)
                    .unwrap(),
            );
            let start = Instant::now();
            let module = validator.validate("bench", bytes).unwrap();
            active.activate(module);
            PolicyInstance::new(active.current().policy.clone())
                .decide(&req)
                .unwrap();
            start.elapsed()
        };
        let uncached = stats((0..SWAPS).map(|_| swap(None)).collect());
        let cached = stats((0..SWAPS).map(|_| swap(Some(cache.clone()))).collect());
        let _ = std::fs::remove_dir_all(&cache_dir);

        println!(
            "| {name} | {:.1} MiB | {compile:.2?} | {cached_load:.1?} | {} | {} | {} | {} | {} |",
            bytes.len() as f64 / (1 << 20) as f64,
            fmt(instantiate),
            fmt(decide),
            fmt(stats(aggregates)),
            fmt(uncached),
            fmt(cached),
        );
    }
}
