//! Controller throughput on a real local control plane (etcd + WDS and ITS
//! kube-apiservers from `testenv`): how fast WorkStatus updates in the ITS
//! reach the WDS Deployments, against a bare kube-rs loop writing the same
//! status patches. Not a test: it prints figures. See BENCHMARKS.md.
//!
//!     cargo bench -p status-router --bench controller
//!     cargo bench -p status-router --bench controller -- --n 1000 --workers 16
//!     cargo bench -p status-router --bench controller -- --n 100000 --rounds 1 --pin   # issue #12
//!
//! Options (or environment variables):
//!   --n 1000,10000         BENCH_N            workload objects per run (a fresh control plane each)
//!   --workers 16           BENCH_WORKERS      controller workers, and the bare loop's concurrency
//!   --concurrency 48       BENCH_CONCURRENCY  requests in flight for setup and ITS updates
//!   --paced-rate 50        BENCH_PACED_RATE   updates per second in the paced latency phase
//!   --paced-count 500      BENCH_PACED_COUNT  objects updated in the paced phase (at most N)
//!   --rounds 3             BENCH_ROUNDS       rounds of D and E (the verdict uses their medians)
//!   --pin                  BENCH_PIN=1        the WDS API server and etcd on CPU 0, everything
//!                                             else (ITS API server, bench, controller) on CPU 1
//!   --inproc               BENCH_INPROC=1     run the controller in this process, not as
//!                                             the `status-router run` child process
//!   --watched-bare         BENCH_WATCHED_BARE=1  each round also runs D with a second watch
//!                                             of the Deployments open (D'), as the
//!                                             controller's own watch is during E
//!
//! For each N, after an untimed setup (N Deployments in the WDS, Bindings of
//! 500 objects each asking for singleton status from one WEC, N WorkStatuses
//! with an initial status in the ITS), the phases are:
//!   A. start the controller; wait until every Deployment holds the initial
//!      status (first sync: a label write and a status write per object);
//!   B. burst: update every WorkStatus once, as fast as the ITS takes it;
//!      controller writes/s = N / (last WDS status seen - first update sent),
//!      latency per object = WDS status seen - ITS update acknowledged;
//!   C. paced: update `paced-count` WorkStatuses at `paced-rate`/s, far below
//!      saturation, for the steady-state latency;
//!   (the controller's counters, peak RSS (VmHWM) and CPU are read, then it stops)
//!   then `rounds` times, D then E, each round with values of its own:
//!   D. bare loop: the same JSON patch `add /status` through the status
//!      subresource as the controller, on the same N Deployments, with
//!      `workers` requests in flight; writes/s = N / (last ack - first sent);
//!   E. catch-up: with the controller stopped, update every WorkStatus, then
//!      start a fresh controller and time until every Deployment follows (no
//!      concurrent ITS load: the like-for-like comparison with D).
//!
//! Times "seen" are when this process's watch on the WDS namespace delivers
//! the Deployment with the new value (the watch runs through all phases).

mod ctl;
mod objects;
mod output;
mod phases;
mod procs;
mod rounds;
mod stats;
mod tracker;

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::output::{print_result, print_summary};
use crate::phases::run_size;

const WDS_NAME: &str = "bench-wds";
const WEC: &str = "wec1";
const NAMESPACE: &str = "bench";
/// Objects per Binding: a Binding of 10,000 entries would approach etcd's 1.5 MiB limit.
const PER_BINDING: usize = 500;
/// A wait fails when no object makes progress for this long.
const STALL: Duration = Duration::from_secs(180);

// ---------------------------------------------------------------- options

#[derive(Clone, Debug)]
struct Options {
    ns: Vec<usize>,
    workers: usize,
    concurrency: usize,
    paced_rate: f64,
    paced_count: usize,
    rounds: usize,
    pin: bool,
    inproc: bool,
    watched_bare: bool,
}

fn options() -> anyhow::Result<Options> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut o = Options {
        ns: vec![1000, 10_000],
        workers: 16,
        concurrency: 48,
        paced_rate: 50.0,
        paced_count: 500,
        rounds: 3,
        pin: env("BENCH_PIN").is_some_and(|v| v != "0"),
        inproc: env("BENCH_INPROC").is_some_and(|v| v != "0"),
        watched_bare: env("BENCH_WATCHED_BARE").is_some_and(|v| v != "0"),
    };
    let mut set = |key: &str, value: &str| -> anyhow::Result<()> {
        match key {
            "n" => {
                o.ns = value
                    .split(',')
                    .map(|s| s.trim().replace('_', "").parse::<usize>())
                    .collect::<Result<_, _>>()
                    .with_context(|| format!("--n {value:?}: expected e.g. 1000,10000"))?;
                if o.ns.is_empty() || o.ns.contains(&0) {
                    bail!("--n {value:?}: need positive sizes");
                }
            }
            "workers" => o.workers = value.parse().context("--workers")?,
            "concurrency" => o.concurrency = value.parse().context("--concurrency")?,
            "paced-rate" => o.paced_rate = value.parse().context("--paced-rate")?,
            "paced-count" => o.paced_count = value.parse().context("--paced-count")?,
            "rounds" => o.rounds = value.parse().context("--rounds")?,
            _ => bail!("unknown option --{key}"),
        }
        Ok(())
    };
    for (var, key) in [
        ("BENCH_N", "n"),
        ("BENCH_WORKERS", "workers"),
        ("BENCH_CONCURRENCY", "concurrency"),
        ("BENCH_PACED_RATE", "paced-rate"),
        ("BENCH_PACED_COUNT", "paced-count"),
        ("BENCH_ROUNDS", "rounds"),
    ] {
        if let Some(value) = env(var) {
            set(key, &value)?;
        }
    }
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            // What `cargo bench` passes to a harness = false binary.
            "--bench" => {}
            "--inproc" => o.inproc = true,
            "--pin" => o.pin = true,
            "--watched-bare" => o.watched_bare = true,
            _ => {
                let Some(opt) = arg.strip_prefix("--") else {
                    bail!(
                        "unexpected argument {arg:?} (see the options in host/benches/controller/main.rs)"
                    );
                };
                let (key, value) = match opt.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (
                        opt.to_string(),
                        args.next()
                            .with_context(|| format!("--{opt} needs a value"))?,
                    ),
                };
                set(&key, &value)?;
            }
        }
    }
    o.workers = o.workers.max(1);
    o.concurrency = o.concurrency.max(1);
    o.rounds = o.rounds.max(1);
    Ok(o)
}

// ---------------------------------------------------------------- main

fn main() -> anyhow::Result<()> {
    let opts = options()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        println!(
            "controller throughput: N = {:?}, workers {}, setup/update concurrency {}, paced {} at {}/s, {} rounds of D and E, {}, controller {}",
            opts.ns,
            opts.workers,
            opts.concurrency,
            opts.paced_count,
            opts.paced_rate,
            opts.rounds,
            if opts.pin {
                "pinned (WDS API server + etcd on CPU 0, the rest on CPU 1)"
            } else {
                "not pinned"
            },
            if opts.inproc {
                "in-process"
            } else {
                "`status-router run` child process"
            }
        );
        let t0 = Instant::now();
        let mut results = Vec::new();
        for &n in &opts.ns {
            let started = Instant::now();
            match run_size(&opts, n).await {
                Ok(mut r) => {
                    r.wall = started.elapsed();
                    print_result(&r);
                    results.push(r);
                }
                Err(e) => {
                    eprintln!("\nN = {n}: FAILED after {:.0?}: {e:#}", started.elapsed());
                    print_summary(&opts, &results);
                    return Err(e);
                }
            }
        }
        print_summary(&opts, &results);
        println!("\ntotal wall time {:.0?}", t0.elapsed());
        Ok(())
    })
}
