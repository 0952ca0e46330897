//! The node as the test sees it: the WDS (the hosting cluster) and the ITS API servers, the
//! status-router pods, their Lease, what `kubectl exec ... status-router probe metrics` says, and
//! the pods' containers as containerd runs them on this machine.
//!
//! Why through kubectl for some calls: `kubectl apply -k` and `kubectl exec` are what an operator
//! uses, so the test goes through them; reads and the timed writes use kube-rs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

/// The namespace `config/default` installs into.
pub const NAMESPACE: &str = "kubestellar";
/// The Deployment of `config/default`.
pub const DEPLOYMENT: &str = "status-router";
/// The WDS name of `config/default`, and so the Lease's name.
pub const WDS_NAME: &str = "wds1";
pub const LEASE: &str = "status-router-wds1";
const SELECTOR: &str = "app.kubernetes.io/name=status-router";
/// Where the test overlay's pods write their bound addresses (`--bound-addrs-file`).
pub const BOUND_ADDRS: &str = "/run/status-router/bound-addrs";
const BINARY: &str = "/usr/local/bin/status-router";

/// What scripts/node.sh hands over, and the clients built from it.
pub struct Node {
    pub wds: kube::Client,
    pub its: kube::Client,
    pub wds_kubeconfig: PathBuf,
    pub its_kubeconfig: PathBuf,
    /// The ITS as the pods reach it: by host name (hostAliases), with a ServiceAccount token.
    pub its_secret_kubeconfig: PathBuf,
    pub containerd: PathBuf,
    pub root: PathBuf,
}

fn env_path(name: &str) -> anyhow::Result<PathBuf> {
    std::env::var_os(name).map(PathBuf::from).with_context(|| {
        format!("${name} is not set: node-test runs inside scripts/node.sh (cargo xtask node-test)")
    })
}

async fn client(path: &Path) -> anyhow::Result<kube::Client> {
    let kubeconfig = Kubeconfig::read_from(path).with_context(|| format!("read {path:?}"))?;
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    Ok(kube::Client::try_from(config)?)
}

impl Node {
    pub async fn from_env() -> anyhow::Result<Self> {
        let wds_kubeconfig = env_path("NODE_WDS_KUBECONFIG")?;
        let its_kubeconfig = env_path("NODE_ITS_KUBECONFIG")?;
        Ok(Self {
            wds: client(&wds_kubeconfig).await?,
            its: client(&its_kubeconfig).await?,
            wds_kubeconfig,
            its_kubeconfig,
            its_secret_kubeconfig: env_path("NODE_ITS_SECRET_KUBECONFIG")?,
            containerd: env_path("NODE_CONTAINERD_ADDRESS")?,
            // From xtask, not `env!`: the binary may have been built in another
            // checkout sharing the target dir.
            root: env_path("NODE_WORKSPACE")?,
        })
    }

    /// `kubectl ARGS` against the WDS; its stdout, or an error with its stderr.
    pub fn kubectl(&self, args: &[&str]) -> anyhow::Result<String> {
        kubectl(&self.wds_kubeconfig, args, None)
    }

    /// `kubectl ARGS` against the ITS.
    pub fn kubectl_its(&self, args: &[&str]) -> anyhow::Result<String> {
        kubectl(&self.its_kubeconfig, args, None)
    }

    /// `kubectl apply -f -` of a YAML or JSON text.
    pub fn apply(&self, kubeconfig: &Path, text: &str) -> anyhow::Result<String> {
        kubectl(kubeconfig, &["apply", "-f", "-"], Some(text))
    }

    /// The status-router pods that are not being deleted, oldest first.
    pub async fn pods(&self) -> anyhow::Result<Vec<Pod>> {
        let api: Api<Pod> = Api::namespaced(self.wds.clone(), NAMESPACE);
        let mut pods: Vec<Pod> = api
            .list(&ListParams::default().labels(SELECTOR))
            .await?
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        pods.sort_by_key(|p| p.metadata.creation_timestamp.clone().map(|t| t.0));
        Ok(pods)
    }

    pub async fn pod(&self, name: &str) -> anyhow::Result<Option<Pod>> {
        let api: Api<Pod> = Api::namespaced(self.wds.clone(), NAMESPACE);
        Ok(api.get_opt(name).await?)
    }

    /// Polls until exactly `n` pods exist and all are Ready; their names.
    pub async fn wait_ready(&self, n: usize, timeout: Duration) -> anyhow::Result<Vec<String>> {
        let t0 = Instant::now();
        loop {
            let pods = self.pods().await?;
            if pods.len() == n && pods.iter().all(is_ready) {
                return Ok(pods.iter().map(name).collect());
            }
            if t0.elapsed() > timeout {
                let states: Vec<String> = pods
                    .iter()
                    .map(|p| format!("{} ready={}", name(p), is_ready(p)))
                    .collect();
                bail!(
                    "not {n} Ready status-router pods within {timeout:?}: {states:?}\n{}",
                    self.describe()
                );
            }
            poll().await;
        }
    }

    /// `kubectl describe` and logs of the pods, for a failure message.
    pub fn describe(&self) -> String {
        let mut out = self
            .kubectl(&["-n", NAMESPACE, "describe", "pods", "-l", SELECTOR])
            .unwrap_or_else(|e| e.to_string());
        out += &self
            .kubectl(&[
                "-n", NAMESPACE, "logs", "-l", SELECTOR, "--tail", "30", "--prefix",
            ])
            .unwrap_or_else(|e| e.to_string());
        out
    }

    /// The Lease's spec (empty when there is no Lease yet).
    pub async fn lease(&self) -> anyhow::Result<k8s_openapi::api::coordination::v1::LeaseSpec> {
        let api: Api<Lease> = Api::namespaced(self.wds.clone(), NAMESPACE);
        Ok(api
            .get_opt(LEASE)
            .await?
            .and_then(|l| l.spec)
            .unwrap_or_default())
    }

    /// The Lease's holder, if any.
    pub async fn lease_holder(&self) -> anyhow::Result<Option<String>> {
        let api: Api<Lease> = Api::namespaced(self.wds.clone(), NAMESPACE);
        Ok(api
            .get_opt(LEASE)
            .await?
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity)
            .filter(|h| !h.is_empty()))
    }

    /// Polls until the Lease is held by one of `candidates`.
    pub async fn wait_holder(
        &self,
        candidates: &[String],
        timeout: Duration,
    ) -> anyhow::Result<String> {
        self.wait_holder_that(&format!("any of {candidates:?}"), timeout, |h| {
            candidates.iter().any(|c| c == h)
        })
        .await
    }

    /// Polls until the Lease is held by anyone but `gone`: after a clean
    /// shutdown the standby and the ReplicaSet's replacement pod compete for
    /// the released Lease, and either may win.
    pub async fn wait_holder_other_than(
        &self,
        gone: &str,
        timeout: Duration,
    ) -> anyhow::Result<String> {
        self.wait_holder_that(&format!("anyone but {gone}"), timeout, |h| h != gone)
            .await
    }

    async fn wait_holder_that(
        &self,
        who: &str,
        timeout: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> anyhow::Result<String> {
        let t0 = Instant::now();
        loop {
            if let Some(h) = self.lease_holder().await?
                && wanted(&h)
            {
                return Ok(h);
            }
            if t0.elapsed() > timeout {
                bail!(
                    "Lease {NAMESPACE}/{LEASE} not held by {who} within {timeout:?} (holder: {:?})",
                    self.lease_holder().await?
                );
            }
            poll().await;
        }
    }

    /// `status-router probe metrics` inside the pod, through `kubectl exec`.
    pub fn metrics(&self, pod: &str) -> anyhow::Result<Metrics> {
        let text = self.kubectl(&[
            "-n",
            NAMESPACE,
            "exec",
            pod,
            "-c",
            "status-router",
            "--",
            BINARY,
            "probe",
            "metrics",
            "--bound-addrs-file",
            BOUND_ADDRS,
        ])?;
        Ok(Metrics(text))
    }

    /// The host pid of the pod's status-router container (containerd's task).
    pub fn container_pid(&self, pod: &Pod) -> anyhow::Result<u32> {
        let id = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|c| c.first())
            .and_then(|c| c.container_id.clone())
            .with_context(|| format!("pod {} has no container id yet", name(pod)))?;
        let id = id.trim_start_matches("containerd://");
        let out = Command::new("ctr")
            .arg("--address")
            .arg(&self.containerd)
            .args(["-n", "k8s.io", "tasks", "ls"])
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() >= 3 && f[0] == id && f[2] == "RUNNING").then(|| f[1].parse().ok())?
            })
            .next()
            .with_context(|| format!("no running containerd task {id} in:\n{text}"))
    }
}

/// A pod's name.
pub fn name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The status-router container's restart count and last exit code.
pub fn last_exit(pod: &Pod) -> (i32, Option<i32>) {
    let status = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first());
    let restarts = status.map_or(0, |s| s.restart_count);
    let code = status
        .and_then(|s| s.last_state.as_ref())
        .and_then(|s| s.terminated.as_ref())
        .map(|t| t.exit_code);
    (restarts, code)
}

/// Poll interval of every wait: short, the failover times are measured with it.
pub async fn poll() {
    tokio::time::sleep(Duration::from_millis(50)).await;
}

fn kubectl(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
    use std::io::Write as _;
    let mut cmd = Command::new("kubectl");
    cmd.env("KUBECONFIG", kubeconfig).args(args);
    cmd.stdin(if stdin.is_some() {
        std::process::Stdio::piped()
    } else {
        std::process::Stdio::null()
    });
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().context("run kubectl")?;
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(text.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "kubectl {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A `/metrics` text.
pub struct Metrics(pub String);

impl Metrics {
    /// The value of a sample: `name` alone, or with a label set such as `{name="x"}`.
    pub fn value(&self, sample: &str) -> Option<f64> {
        self.0.lines().find_map(|l| {
            let rest = l.strip_prefix(sample)?;
            let rest = rest.strip_prefix(' ')?;
            rest.split_whitespace().next()?.parse().ok()
        })
    }

    /// `leader_election_master_status{name="<LEASE>"}`.
    pub fn is_leader(&self) -> anyhow::Result<bool> {
        let sample = format!("leader_election_master_status{{name=\"{LEASE}\"}}");
        match self.value(&sample) {
            Some(v) => Ok(v == 1.0),
            None => bail!("no sample {sample} in the metrics:\n{}", self.0),
        }
    }

    /// `status_router_status_writes_total`.
    pub fn status_writes(&self) -> anyhow::Result<f64> {
        self.value("status_router_status_writes_total")
            .with_context(|| {
                format!(
                    "no sample status_router_status_writes_total in the metrics:\n{}",
                    self.0
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_samples_with_and_without_labels() {
        let m = Metrics(
            "# TYPE x counter\nstatus_router_status_writes_total 3\nleader_election_master_status{name=\"status-router-wds1\"} 1\n"
                .into(),
        );
        assert_eq!(m.status_writes().unwrap(), 3.0);
        assert!(m.is_leader().unwrap());
        assert!(m.value("status_router_status_writes").is_none());
    }
}
