//! `node-test`: status-router on a real Kubernetes node. It runs inside the node's network
//! namespace, which `scripts/node.sh` creates and hands over (`cargo xtask node-test` and
//! `cargo xtask node-bench` do it all):
//!
//! ```text
//! node-test check              the checks of issue #10 item 7, one `ok:` line each
//! node-test bench [--runs N]   leader failover times, clean (pod deleted) and killed (SIGKILL)
//! ```

mod bench;
mod checks;
mod cluster;
mod deploy;
mod scenario;

use std::process::ExitCode;

use cluster::Node;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("check") => check().await,
        Some("bench") => {
            let runs = match args.get(1).map(String::as_str) {
                Some("--runs") => args.get(2).and_then(|n| n.parse().ok()),
                None => Some(5),
                _ => None,
            };
            match runs {
                Some(runs) if runs > 0 => bench::run(runs).await,
                _ => Err(anyhow::anyhow!("usage: node-test bench [--runs N]")),
            }
        }
        _ => Err(anyhow::anyhow!(
            "usage: node-test check | node-test bench [--runs N]"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("node-test: FAILED: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Installs status-router and the scenario; the Ready pods.
async fn setup(node: &Node) -> anyhow::Result<Vec<String>> {
    scenario::install(node)?;
    let pods = deploy::install(node).await?;
    println!("ok: config/default (test overlay) applied; both replicas Ready: {pods:?}");
    Ok(pods)
}

async fn check() -> anyhow::Result<()> {
    let node = Node::from_env().await?;
    checks::name_resolution(&node)?;
    let pods = setup(&node).await?;
    checks::image(&node, &node.pods().await?)?;
    let leader = checks::one_leader(&node, &pods).await?;
    checks::singleton(&node).await?;
    checks::standby_silent(&node, &leader, &pods)?;
    checks::delete_leader(&node, &leader, &pods).await?;
    let pods = node
        .wait_ready(2, std::time::Duration::from_secs(120))
        .await?;
    checks::rollout_restart(&node, &pods).await?;
    let pods = node
        .wait_ready(2, std::time::Duration::from_secs(120))
        .await?;
    let leader = checks::one_leader(&node, &pods).await?;
    checks::sigterm_leader(&node, &leader).await?;
    println!("node-test: all checks passed");
    Ok(())
}
