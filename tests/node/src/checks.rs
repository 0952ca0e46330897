//! The checks of the real-node test (issue #10, item 7), in order. Each returns an error that
//! says what was expected and what the node showed; none is skipped.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use k8s_openapi::api::core::v1::Pod;

use crate::cluster::{self, DEPLOYMENT, NAMESPACE, Node, last_exit, name, poll};
use crate::scenario::{self, status};

/// How long a WorkStatus change may take to reach the WDS through a failover ("a few seconds",
/// with room for a loaded 2-core machine).
const FAILOVER_BUDGET: Duration = Duration::from_secs(10);
/// The default `--leader-election-lease-duration`.
const LEASE_DURATION: Duration = Duration::from_secs(15);

/// The image's promises, read from the host (containerd runs the pods here): UID 65532, a
/// read-only root file system, no shell, and the pod's /etc/hosts naming the ITS host.
pub fn image(node: &Node, pods: &[Pod]) -> anyhow::Result<()> {
    for pod in pods {
        let pid = node.container_pid(pod)?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let uid = status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .context("no Uid line")?;
        ensure!(
            uid.split_whitespace().skip(1).all(|u| u == "65532"),
            "pod {}: the controller runs as {uid:?}, not UID 65532",
            name(pod)
        );
        let mounts = std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))?;
        let root = mounts
            .lines()
            .find(|l| l.split_whitespace().nth(4) == Some("/"))
            .context("no root mount")?;
        let options = root.split_whitespace().nth(5).unwrap_or_default();
        ensure!(
            options.split(',').any(|o| o == "ro"),
            "pod {}: the root file system is mounted {options:?}, not read-only",
            name(pod)
        );
        let root_dir = format!("/proc/{pid}/root");
        for shell in ["bin/sh", "usr/bin/sh", "bin/bash"] {
            ensure!(
                !std::path::Path::new(&root_dir).join(shell).exists(),
                "pod {}: the image has /{shell}",
                name(pod)
            );
        }
        let hosts = std::fs::read_to_string(format!("{root_dir}/etc/hosts"))?;
        ensure!(
            hosts.contains("its.status-router.test"),
            "pod {}: /etc/hosts does not name the ITS host:\n{hosts}",
            name(pod)
        );
    }
    println!(
        "ok: image: UID 65532, read-only root, no shell; the ITS is reached by host name (its.status-router.test from /etc/hosts)"
    );
    Ok(())
}

/// Exactly one pod holds the Lease, and each pod's `leader_election_master_status` agrees.
pub async fn one_leader(node: &Node, pods: &[String]) -> anyhow::Result<String> {
    let holder = node.wait_holder(pods, Duration::from_secs(60)).await?;
    for pod in pods {
        // The metric follows the Lease within a renew period: poll.
        let t0 = Instant::now();
        loop {
            let leader = node.metrics(pod)?.is_leader()?;
            if leader == (*pod == holder) {
                break;
            }
            if t0.elapsed() > Duration::from_secs(10) {
                bail!(
                    "pod {pod}: leader_election_master_status is {} but the Lease holder is {holder}",
                    leader as u8
                );
            }
            poll().await;
        }
    }
    println!("ok: one Lease holder ({holder}); leader_election_master_status agrees on {pods:?}");
    Ok(holder)
}

/// KubeStellar's singleton scenario through the pods: created, followed, cleared, restored.
pub async fn singleton(node: &Node) -> anyhow::Result<()> {
    let t = Duration::from_secs(30);
    scenario::create(node, &status(1)).await?;
    let d = scenario::wait_status(node, Some(&status(1)), t).await?;
    scenario::report(node, &status(2)).await?;
    let d2 = scenario::wait_status(node, Some(&status(2)), t).await?;
    scenario::bind(node, false)?;
    scenario::wait_status(node, None, t).await?;
    scenario::bind(node, true)?;
    scenario::wait_status(node, Some(&status(2)), t).await?;
    println!(
        "ok: singleton scenario: status copied ({d:?}), update followed ({d2:?}), cleared when the Binding stops wanting it, restored"
    );
    Ok(())
}

/// The standby has written nothing; the leader has.
pub fn standby_silent(node: &Node, leader: &str, pods: &[String]) -> anyhow::Result<()> {
    for pod in pods {
        let writes = node.metrics(pod)?.status_writes()?;
        if pod == leader {
            ensure!(writes > 0.0, "the leader {pod} counts no status writes");
        } else {
            ensure!(
                writes == 0.0,
                "the standby {pod} wrote {writes} statuses before it led"
            );
        }
    }
    println!("ok: the standby wrote no status while the leader wrote");
    Ok(())
}

/// How a leader goes away.
#[derive(Clone, Copy, Debug)]
pub enum Stop {
    /// `kubectl delete pod`: SIGTERM, a clean shutdown.
    Delete,
    /// SIGKILL to the container's process: the Lease must expire.
    Kill,
}

/// Stops the leader, changes the WorkStatus, and returns the time from the stop to the change
/// arriving in the WDS (the first status write of the new leader), and the new leader.
pub async fn failover(
    node: &Node,
    leader: &str,
    others: &[String],
    stop: Stop,
    n: u64,
) -> anyhow::Result<(Duration, String)> {
    let t0 = Instant::now();
    match stop {
        Stop::Delete => {
            node.kubectl(&["-n", NAMESPACE, "delete", "pod", leader, "--wait=false"])?;
        }
        Stop::Kill => {
            let pod = node.pod(leader).await?.context("the leader pod is gone")?;
            let pid = node.container_pid(&pod)?;
            kill(pid, "KILL")?;
        }
    }
    let budget = match stop {
        Stop::Delete => FAILOVER_BUDGET,
        Stop::Kill => LEASE_DURATION + FAILOVER_BUDGET,
    };
    // The change is made once the old leader has let go: a clean leader hands the Lease over;
    // a killed one still names itself in it (and may come back under the same identity), so
    // there the change is made at once and waits for whoever leads next.
    let new_leader = match stop {
        Stop::Delete => node.wait_holder_other_than(leader, budget).await?,
        Stop::Kill => leader.to_string(),
    };
    scenario::report(node, &status(n)).await?;
    scenario::wait_status(node, Some(&status(n)), budget).await?;
    let elapsed = t0.elapsed();
    let new_leader = match stop {
        Stop::Delete => new_leader,
        Stop::Kill => {
            let mut candidates = others.to_vec();
            candidates.push(leader.to_string());
            node.wait_holder(&candidates, Duration::from_secs(5))
                .await?
        }
    };
    Ok((elapsed, new_leader))
}

/// Deleting the leader pod: another replica leads (the standby, or the ReplicaSet's
/// replacement if it asks first for the Lease the old leader released) and a change made
/// right after arrives.
pub async fn delete_leader(node: &Node, leader: &str, pods: &[String]) -> anyhow::Result<()> {
    let standby: Vec<String> = pods.iter().filter(|p| *p != leader).cloned().collect();
    let (elapsed, new_leader) = failover(node, leader, &standby, Stop::Delete, 3).await?;
    ensure!(
        new_leader != leader,
        "after deleting {leader}, it still leads"
    );
    let writes = node.metrics(&new_leader)?.status_writes()?;
    ensure!(
        writes > 0.0,
        "the new leader {new_leader} counts no status writes"
    );
    println!(
        "ok: leader {leader} deleted: {new_leader} took the Lease ({}); the WorkStatus change made right after arrived in {elapsed:?}",
        if standby.contains(&new_leader) {
            "the standby"
        } else {
            "the ReplicaSet's replacement"
        }
    );
    Ok(())
}

/// `kubectl rollout restart`: every WorkStatus change made during it reaches the WDS (the last
/// one written is the status at the end).
pub async fn rollout_restart(node: &Node, before: &[String]) -> anyhow::Result<()> {
    node.kubectl(&[
        "-n",
        NAMESPACE,
        "rollout",
        "restart",
        "deployment",
        DEPLOYMENT,
    ])?;
    let t0 = Instant::now();
    let mut n = 100;
    let mut changes = 0;
    loop {
        n += 1;
        changes += 1;
        scenario::report(node, &status(n)).await?;
        let pods: Vec<String> = node.pods().await?.iter().map(name).collect();
        let ready = node
            .pods()
            .await?
            .iter()
            .filter(|p| cluster::is_ready(p))
            .count();
        let done = pods.len() == 2 && ready == 2 && pods.iter().all(|p| !before.contains(p));
        if done {
            break;
        }
        ensure!(
            t0.elapsed() < Duration::from_secs(180),
            "the rollout did not finish within 180 s\n{}",
            node.describe()
        );
        // One change every 200 ms during the rollout (a steady stream of WEC updates).
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rollout = t0.elapsed();
    let lag = scenario::wait_status(node, Some(&status(n)), FAILOVER_BUDGET).await?;
    println!(
        "ok: rollout restart ({rollout:?}, {changes} WorkStatus changes during it): the last change arrived {lag:?} after the rollout ended"
    );
    Ok(())
}

/// SIGTERM to the leader's process: it exits 0 and releases the Lease: the Lease is acquired
/// anew (its acquireTime changes, by the standby or by the restarted container of the same pod)
/// long before it would have expired.
pub async fn sigterm_leader(node: &Node, leader: &str) -> anyhow::Result<()> {
    let pod = node.pod(leader).await?.context("the leader pod is gone")?;
    let (restarts, _) = last_exit(&pod);
    let pid = node.container_pid(&pod)?;
    let before = node.lease().await?;
    let t0 = Instant::now();
    kill(pid, "TERM")?;
    let (took, holder) = loop {
        let lease = node.lease().await?;
        if lease.acquire_time.is_some() && lease.acquire_time != before.acquire_time {
            break (t0.elapsed(), lease.holder_identity.unwrap_or_default());
        }
        ensure!(
            t0.elapsed() < LEASE_DURATION,
            "the Lease was not acquired anew within {LEASE_DURATION:?} after SIGTERM: the leader did not release it"
        );
        poll().await;
    };
    ensure!(
        took < Duration::from_secs(5),
        "the Lease was acquired anew only {took:?} after SIGTERM (it lasts {LEASE_DURATION:?}): not released"
    );
    let exit = loop {
        let pod = node.pod(leader).await?.context("the leader pod is gone")?;
        match last_exit(&pod) {
            (r, Some(code)) if r > restarts => break code,
            _ if t0.elapsed() > Duration::from_secs(60) => {
                bail!("the container of {leader} has not restarted 60 s after SIGTERM")
            }
            _ => poll().await,
        }
    };
    ensure!(exit == 0, "the leader exited {exit} after SIGTERM, not 0");
    println!(
        "ok: SIGTERM to the leader {leader}: exit code 0, Lease released ({holder} acquired it {took:?} after the signal)"
    );
    Ok(())
}

fn kill(pid: u32, signal: &str) -> anyhow::Result<()> {
    let status = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()?;
    ensure!(status.success(), "kill -{signal} {pid} failed");
    Ok(())
}

/// Host-name resolution inside the image: its binary, in a copy of the image's root file system
/// (chroot, UID 65532), runs against the ITS API server named `its.status-router.test`. Without
/// an /etc/hosts entry the name does not resolve; with one, the server answers (before any CRD is
/// installed, so `run` stops at the missing-CRD check: proof that it got through).
pub fn name_resolution(node: &Node) -> anyhow::Result<()> {
    let rootfs = std::env::var("NODE_IMAGE_ROOTFS")
        .context("$NODE_IMAGE_ROOTFS (the image's staged root file system) is not set")?;
    let dir = std::env::temp_dir().join(format!("node-test-rootfs-{}", std::process::id()));
    let copy = dir.join("rootfs");
    std::fs::create_dir_all(&dir)?;
    let status = std::process::Command::new("cp")
        .args(["-a", &rootfs])
        .arg(&copy)
        .status()?;
    ensure!(status.success(), "copy {rootfs}");
    let kubeconfig = std::fs::read_to_string(&node.its_kubeconfig)?.replace(
        "https://127.0.0.1:6444",
        "https://its.status-router.test:6444",
    );
    std::fs::write(copy.join("kubeconfig"), kubeconfig)?;
    let run = || -> anyhow::Result<String> {
        let out = std::process::Command::new("chroot")
            .arg("--userspec=65532:65532")
            .arg(&copy)
            .args([
                "/usr/local/bin/status-router",
                "run",
                "--kubeconfig",
                "/kubeconfig",
            ])
            .args([
                "--wds-context",
                "c",
                "--its-context",
                "c",
                "--wds-name",
                "x",
            ])
            .env("NO_COLOR", "1")
            .env("HOME", "/home/nonroot")
            .output()?;
        ensure!(!out.status.success(), "run succeeded without the CRDs");
        Ok(String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let unresolved = run()?;
    std::fs::write(copy.join("etc/hosts"), "127.0.0.1 its.status-router.test\n")?;
    let resolved = run()?;
    std::fs::remove_dir_all(&dir)?;
    ensure!(
        unresolved.contains("failed to lookup address"),
        "without /etc/hosts, expected a name-resolution error, got:\n{unresolved}"
    );
    ensure!(
        !resolved.contains("failed to lookup address")
            && resolved.contains("bindings.control.kubestellar.io"),
        "with its.status-router.test in /etc/hosts, expected the API server's answer (no Binding CRD), got:\n{resolved}"
    );
    println!(
        "ok: the image's binary resolves its.status-router.test through /etc/hosts (and fails without it)"
    );
    Ok(())
}
