//! The latency of a policy hot swap from a file: from the rename of a new
//! module into place to the first decision made by it, through the real
//! `hotswap::file::watch` (inotify, its debounce, the settled read), the
//! `Swapper` (sha256, validation off the async threads, activation) and a
//! fresh `PolicyInstance` of the now active module (instantiation and one
//! `decide`). Also the validation alone (`Validator::validate`), and the load
//! alone (`PolicyEngine::load_cached`, without the self-test). Each with
//! compilation (no cache), with a cold compiled cache (compile and store), and
//! from a warm compiled cache. See BENCHMARKS.md, "Policy hot swap".
//!
//!     cargo xtask build-policies     # the strict-singleton component
//!     cargo bench -p status-router --bench swap
//!
//! No control plane is needed.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use status_router::hotswap::{self, Swapper, Validator};
use status_router::policy::active::ActivePolicy;
use status_router::policy::{
    CompiledCache, DEFAULT_POLICY, Decision, ObjectDoc, PolicyEngine, PolicyInstance, Request,
    RequestDoc,
};

/// Swaps to each module, per mode.
const ITERATIONS: usize = 30;
/// How long one swap may take before the bench gives up.
const SWAP_TIMEOUT: Duration = Duration::from_secs(30);

/// A module the bench swaps in.
struct Module {
    name: &'static str,
    bytes: Vec<u8>,
    digest: String,
}

/// How the validator gets compiled code.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// No compiled cache: every validation compiles.
    Compile,
    /// A compiled cache emptied before each swap: compile, then store.
    ColdCache,
    /// A compiled cache that holds both modules.
    WarmCache,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Compile => "compile (no cache)",
            Mode::ColdCache => "cold cache (compile + store)",
            Mode::WarmCache => "warm cache",
        }
    }
}

fn main() {
    let policies = policies_dir();
    let read = |stem: &str| {
        let path = policies.join(format!("{stem}.wasm"));
        std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "cannot read {}: {e}\nrun `cargo xtask build-policies` first (it writes the \
                 policy components to {})",
                path.display(),
                policies.display()
            )
        })
    };
    let engine = PolicyEngine::new().expect("policy engine");
    let module = |name, bytes: Vec<u8>| {
        let digest = engine
            .load(&bytes)
            .expect("a valid policy")
            .info()
            .digest
            .clone();
        Module {
            name,
            bytes,
            digest,
        }
    };
    // What an operator deploys: `cargo xtask build-policies`' output, which
    // must match the default policy embedded in the binary (same sources).
    let default = read("default");
    assert!(
        default == DEFAULT_POLICY,
        "{}/default.wasm differs from the default policy embedded in the binary: the components \
         there are stale; run `cargo xtask build-policies`",
        policies.display()
    );
    let modules = [
        module("default", default),
        module("strict-singleton", read("strict-singleton")),
    ];
    print_machine();
    for m in &modules {
        println!("module {}: {} bytes, {}", m.name, m.bytes.len(), m.digest);
    }
    println!("{ITERATIONS} swaps to each module per mode; times in ms\n");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut rows = Vec::new();
    for mode in [Mode::Compile, Mode::ColdCache, Mode::WarmCache] {
        let cache_dir = tempfile::tempdir().expect("temp dir");
        let cache = (mode != Mode::Compile).then(|| CompiledCache::new(cache_dir.path()));
        let validator =
            || Validator::new(engine.clone(), cache.clone(), None, None).expect("a validator");
        if mode == Mode::WarmCache {
            for m in &modules {
                validator().validate("warm-up", &m.bytes).expect("valid");
            }
        }
        let empty_cache = || {
            if mode == Mode::ColdCache {
                empty_dir(cache_dir.path());
            }
        };

        // The validation alone, and the load alone (no self-test).
        let v = validator();
        for m in &modules {
            let mut validate = Vec::new();
            let mut load = Vec::new();
            for _ in 0..ITERATIONS {
                empty_cache();
                let t = Instant::now();
                let active = v.validate("bench", &m.bytes).expect("valid");
                validate.push(t.elapsed());
                assert_eq!(active.from_cache, mode == Mode::WarmCache);
                empty_cache();
                let t = Instant::now();
                engine.load_cached(&m.bytes, cache.as_ref()).expect("valid");
                load.push(t.elapsed());
            }
            rows.push((mode, m.name, "validate", stats(&mut validate)));
            rows.push((mode, m.name, "load only", stats(&mut load)));
        }

        // The swap offered straight to the Swapper, as the ConfigMap source
        // does once the watch has delivered the new bytes.
        let offers = runtime.block_on(offer_swaps(&modules, validator(), &empty_cache));
        for (m, mut samples) in modules.iter().zip(offers) {
            rows.push((mode, m.name, "offer swap", stats(&mut samples)));
        }

        // The whole swap through the file watcher.
        let swaps = runtime.block_on(file_swaps(&modules, validator(), &empty_cache));
        for (m, mut samples) in modules.iter().zip(swaps) {
            rows.push((mode, m.name, "file swap", stats(&mut samples.0)));
            rows.push((mode, m.name, "first decide", stats(&mut samples.1)));
        }
    }

    println!(
        "| mode | to module | measure | median | p90 | min | max |\n| --- | --- | --- | ---: | ---: | ---: | ---: |"
    );
    for (mode, module, what, s) in rows {
        println!(
            "| {} | {module} | {what} | {:.1} | {:.1} | {:.1} | {:.1} |",
            mode.label(),
            s.median,
            s.p90,
            s.min,
            s.max
        );
    }
    println!(
        "\nvalidate: Validator::validate (sha256, load, self-test); load only: \
         PolicyEngine::load_cached (compile or cache, WIT checks, trial instance)\noffer swap: \
         Swapper::offer of the bytes -> active, plus a first decide (the ConfigMap path without \
         the watch delivery)\nfile swap: rename into place -> the new module active and a first \
         decide on a fresh instance answered (includes the debounce of the file source)\n\
         first decide: instantiation and first call alone, included in file swap"
    );
}

/// The request every first decide answers.
fn request() -> Request {
    Request::from(
        &RequestDoc::new(ObjectDoc::deployment("default", "web"))
            .singleton(["wec1"])
            .multi_wec(["wec1", "wec2"]),
    )
}

/// A first decide of the active module, on a fresh instance, as a worker
/// makes after a swap.
fn first_decide(active: &ActivePolicy, request: &Request) {
    let decision = PolicyInstance::new(active.current().policy.clone())
        .decide(request)
        .expect("the new module decides");
    assert!(
        matches!(decision, Decision::MultiWec(_) | Decision::None),
        "{decision:?}"
    );
}

/// For each module, the latencies of `Swapper::offer` of it and a first
/// decide, alternating between the modules.
async fn offer_swaps(
    modules: &[Module],
    validator: Validator,
    before_each: &dyn Fn(),
) -> Vec<Vec<Duration>> {
    let last = modules.last().expect("modules");
    let active = ActivePolicy::new(validator.validate("bench", &last.bytes).expect("valid"));
    let swapper = Swapper::new(validator, active.clone(), None);
    let request = request();
    let mut samples = vec![Vec::new(); modules.len()];
    for i in 0..ITERATIONS * modules.len() {
        let (index, module) = (i % modules.len(), &modules[i % modules.len()]);
        let bytes = module.bytes.clone();
        before_each();
        let start = Instant::now();
        swapper.offer("bench".into(), bytes, None).await;
        assert_eq!(
            active.current().policy.info().digest,
            module.digest,
            "{}",
            active.status()
        );
        first_decide(&active, &request);
        samples[index].push(start.elapsed());
    }
    samples
}

/// For each module, the latencies of the swaps to it (whole swap, and the
/// first decide alone), alternating between the modules.
async fn file_swaps(
    modules: &[Module],
    validator: Validator,
    before_each: &dyn Fn(),
) -> Vec<(Vec<Duration>, Vec<Duration>)> {
    let root = tempfile::tempdir().expect("temp dir");
    let (watched, staging) = (root.path().join("watched"), root.path().join("staging"));
    std::fs::create_dir_all(&watched).unwrap();
    std::fs::create_dir_all(&staging).unwrap();
    let path = watched.join("policy.wasm");
    let last = modules.last().expect("modules");
    std::fs::write(&path, &last.bytes).unwrap();
    let initial = validator.validate("bench", &last.bytes).expect("valid");
    let active = ActivePolicy::new(initial);
    let swapper = Arc::new(Swapper::new(validator, active.clone(), None));
    let watch = tokio::spawn(hotswap::file::watch(path.clone(), swapper));
    let ready = Instant::now();
    while !inotify_watches(&watched) {
        assert!(
            ready.elapsed() < SWAP_TIMEOUT,
            "the file watcher never started"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let request = request();

    let mut samples = vec![(Vec::new(), Vec::new()); modules.len()];
    for i in 0..ITERATIONS * modules.len() {
        let (index, module) = (i % modules.len(), &modules[i % modules.len()]);
        // Outside the watched dir: no event before the rename.
        let staged = staging.join(format!("{i}.wasm"));
        std::fs::write(&staged, &module.bytes).unwrap();
        before_each();
        // Let the watcher go idle (the previous swap's events are handled).
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut changes = active.subscribe();
        changes.mark_unchanged();
        let rejected = active.swaps().1;

        let start = Instant::now();
        std::fs::rename(&staged, &path).unwrap();
        loop {
            match tokio::time::timeout(SWAP_TIMEOUT, changes.changed()).await {
                Ok(Ok(())) if active.current().policy.info().digest == module.digest => break,
                Ok(Ok(())) => continue,
                _ => panic!("no swap to {} within {SWAP_TIMEOUT:?}", module.name),
            }
        }
        let decide_start = Instant::now();
        first_decide(&active, &request);
        let end = Instant::now();
        assert_eq!(
            active.swaps().1,
            rejected,
            "a swap was rejected: {}",
            active.status()
        );
        samples[index].0.push(end - start);
        samples[index].1.push(end - decide_start);
    }
    watch.abort();
    samples
}

/// Median, p90, min and max, in milliseconds.
struct Stats {
    median: f64,
    p90: f64,
    min: f64,
    max: f64,
}

fn stats(samples: &mut [Duration]) -> Stats {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let n = samples.len();
    let median = if n % 2 == 1 {
        ms(samples[n / 2])
    } else {
        (ms(samples[n / 2 - 1]) + ms(samples[n / 2])) / 2.0
    };
    Stats {
        median,
        p90: ms(samples[(n * 9).div_ceil(10) - 1]),
        min: ms(samples[0]),
        max: ms(samples[n - 1]),
    }
}

fn empty_dir(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// `target/policies` (or `$CARGO_TARGET_DIR/policies`), found from this
/// executable: `<target>/release/deps/swap-<hash>`.
fn policies_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the bench's path");
    exe.ancestors()
        .nth(3)
        .map(|target| target.join("policies"))
        .unwrap_or_else(|| panic!("cannot find the target dir from {}", exe.display()))
}

/// Whether an inotify instance of this process watches `dir` (Linux's
/// `/proc/self/fdinfo` lists each watch with the watched inode, in hex).
fn inotify_watches(dir: &Path) -> bool {
    let needle = format!("ino:{:x} ", std::fs::metadata(dir).expect("stat").ino());
    std::fs::read_dir("/proc/self/fdinfo")
        .map(|fds| {
            fds.filter_map(Result::ok)
                .filter_map(|fd| std::fs::read_to_string(fd.path()).ok())
                .any(|info| {
                    info.lines()
                        .any(|l| l.starts_with("inotify ") && l.contains(&needle))
                })
        })
        .unwrap_or(false)
}

fn print_machine() {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_default();
    println!("machine: {cpus} CPUs, {model}");
}
