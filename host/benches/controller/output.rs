//! The per-size summary line and the final Markdown table, with the
//! verdicts against the targets.

use crate::Options;
use crate::phases::RunResult;

pub fn mib(kib: Option<u64>) -> String {
    kib.map_or("n/a".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

/// Peak RSS per tracked object, in KiB.
fn per_object(kib: Option<u64>, n: usize) -> Option<f64> {
    kib.map(|k| k as f64 / n as f64)
}

fn kib_per_object(kib: Option<u64>, n: usize) -> String {
    per_object(kib, n).map_or("n/a".into(), |k| format!("{k:.2} KiB"))
}

/// Issue #12's targets.
const CATCH_UP_TARGET: f64 = 0.95;
const PACED_P99_TARGET_MS: f64 = 20.0;
const KIB_PER_OBJECT_TARGET: f64 = 4.0;

/// A median, then every round's figure: `1 154 (1 120, 1 154, 1 201)`.
fn rounds(median: f64, each: impl Iterator<Item = f64>) -> String {
    let each: Vec<String> = each.map(|x| format!("{x:.0}")).collect();
    format!("{median:.0} ({})", each.join(", "))
}

pub fn print_result(r: &RunResult) {
    println!(
        "N = {} done in {:.0?} (setup {:.0?}); controller peak RSS {} ({} per object; RSS {} after C), catch-up controller {} ({} per object); bench process VmHWM {} (VmRSS {})",
        r.n,
        r.wall,
        r.setup,
        mib(r.controller_hwm_kib),
        kib_per_object(r.controller_hwm_kib, r.n),
        mib(r.controller_rss_kib),
        mib(r.catch_up_hwm_kib()),
        kib_per_object(r.catch_up_hwm_kib(), r.n),
        mib(Some(r.bench_hwm_kib.0)),
        mib(Some(r.bench_hwm_kib.1)),
    );
    println!("counters after A+B+C: {}", r.counters);
}

pub fn print_summary(opts: &Options, results: &[RunResult]) {
    if results.is_empty() {
        return;
    }
    let rss_note = if opts.inproc {
        "bench process, includes its own clients and watch"
    } else {
        "status-router child process"
    };
    println!(
        "\n## Controller throughput ({} workers, {}; D and E: medians of {} rounds)\n",
        opts.workers,
        if opts.pin { "pinned" } else { "not pinned" },
        opts.rounds
    );
    let header = [
        "",
        "first sync (A)",
        "ITS updates/s (B)",
        "controller writes/s (B)",
        "latency p50 / p99 / max (B)",
        "paced latency p50 / p99 / max (C)",
        "bare loop writes/s (D)",
        "controller / bare",
        "catch-up writes/s (E)",
        "catch-up / bare",
        "status / label writes",
        "errors",
        "peak RSS",
        "peak RSS / object",
    ];
    println!("| {} |", header.join(" | "));
    println!("|{}|", vec!["---"; header.len()].join("|"));
    for r in results {
        let l = &r.burst_latency;
        let p = &r.paced_latency;
        let row = [
            format!("N = {}", r.n),
            format!(
                "{:.1} s ({:.0} objects/s)",
                r.initial_sync.as_secs_f64(),
                r.n as f64 / r.initial_sync.as_secs_f64()
            ),
            format!("{:.0}", r.its_rate),
            format!("{:.0}", r.burst_rate),
            format!("{:.0} / {:.0} / {:.0} ms", l.p50, l.p99, l.max),
            format!("{:.1} / {:.1} / {:.1} ms", p.p50, p.p99, p.max),
            rounds(r.bare_rate(), r.bare.iter().map(|d| d.rate)),
            format!("{:.0}%", 100.0 * r.burst_rate / r.bare_rate()),
            rounds(r.catch_up_rate(), r.catch_up.iter().map(|e| e.rate)),
            format!("{:.0}%", 100.0 * r.catch_up_rate() / r.bare_rate()),
            format!("{} / {}", r.counters.status_writes, r.counters.label_writes),
            format!(
                "{} reconcile, {} policy",
                r.counters.reconcile_errors, r.counters.policy_errors
            ),
            mib(r.controller_hwm_kib),
            kib_per_object(r.controller_hwm_kib.max(r.catch_up_hwm_kib()), r.n),
        ];
        println!("| {} |", row.join(" | "));
    }
    println!(
        "\nlatency = WDS status seen on this process's watch - ITS update acknowledged; peak RSS: {rss_note} (VmHWM)"
    );
    println!(
        "peak RSS / object: the higher of the two controllers' peaks (A to C, and E's catch-up) over N"
    );
    println!(
        "targets (issue #12): catch-up (E) >= {:.0}% of the bare loop's writes/s; p99 propagation < {PACED_P99_TARGET_MS} ms at steady state (C); <= {KIB_PER_OBJECT_TARGET} KiB peak RSS per tracked object",
        100.0 * CATCH_UP_TARGET
    );
    for r in results {
        let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
        if let Some(watched) = r.bare_watched_rate() {
            println!(
                "  N = {}: D' (bare loop with a second watch open) {watched:.0} writes/s first to last; catch-up {:.0}% of D'",
                r.n,
                100.0 * r.catch_up_rate() / watched,
            );
        }
        let per = per_object(r.controller_hwm_kib.max(r.catch_up_hwm_kib()), r.n);
        println!(
            "  N = {}: catch-up {:.0}% ({}; {:.0}% against D measured as E, first to last seen), burst {:.0}%; p99 paced {:.1} ms ({}), p99 burst {:.0} ms; {} per object ({}); all {} statuses verified {:.1} s after the controller started",
            r.n,
            100.0 * r.catch_up_rate() / r.bare_rate(),
            verdict(r.catch_up_rate() >= CATCH_UP_TARGET * r.bare_rate()),
            100.0 * r.catch_up_rate() / r.bare_first_to_last_rate(),
            100.0 * r.burst_rate / r.bare_rate(),
            r.paced_latency.p99,
            verdict(r.paced_latency.p99 < PACED_P99_TARGET_MS),
            r.burst_latency.p99,
            kib_per_object(r.controller_hwm_kib.max(r.catch_up_hwm_kib()), r.n),
            verdict(per.is_some_and(|k| k <= KIB_PER_OBJECT_TARGET)),
            r.n,
            r.initial_sync.as_secs_f64(),
        );
    }
}
