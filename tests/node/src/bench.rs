//! The failover benchmark: the leader goes away, a WorkStatus changes right after, and the time
//! until that change is in the WDS (the first status write of the new leader) is measured; over
//! several runs, for a clean shutdown (`kubectl delete pod`: SIGTERM, the Lease released) and a
//! kill (SIGKILL to the container: the Lease must expire). Prints a Markdown table for
//! BENCHMARKS.md.

use std::time::Duration;

use crate::checks::{self, Stop};
use crate::cluster::Node;
use crate::scenario::{self, status};

pub async fn run(runs: usize) -> anyhow::Result<()> {
    let node = Node::from_env().await?;
    let pods = crate::setup(&node).await?;
    node.wait_holder(&pods, Duration::from_secs(60)).await?;
    scenario::create(&node, &status(1)).await?;
    scenario::wait_status(&node, Some(&status(1)), Duration::from_secs(30)).await?;
    let mut n = 1;
    let mut table = Vec::new();
    for stop in [Stop::Delete, Stop::Kill] {
        let mut times = Vec::new();
        for run in 0..runs {
            let pods = node.wait_ready(2, Duration::from_secs(120)).await?;
            let leader = node.wait_holder(&pods, Duration::from_secs(60)).await?;
            let others: Vec<String> = pods.iter().filter(|p| **p != leader).cloned().collect();
            n += 1;
            let (elapsed, new_leader) = checks::failover(&node, &leader, &others, stop, n).await?;
            eprintln!("bench: {stop:?} run {run}: {elapsed:?} ({leader} -> {new_leader})");
            times.push(elapsed);
        }
        table.push((stop, times));
    }
    println!("| leader stopped by | runs | median | min | max |");
    println!("|---|---|---|---|---|");
    for (stop, mut times) in table {
        times.sort();
        let how = match stop {
            Stop::Delete => "`kubectl delete pod` (SIGTERM, Lease released)",
            Stop::Kill => "SIGKILL of the container (Lease expires, 15 s)",
        };
        println!(
            "| {how} | {} | {:.2} s | {:.2} s | {:.2} s |",
            times.len(),
            median(&times).as_secs_f64(),
            times[0].as_secs_f64(),
            times[times.len() - 1].as_secs_f64()
        );
    }
    Ok(())
}

fn median(sorted: &[Duration]) -> Duration {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }
}
