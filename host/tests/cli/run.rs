//! `status-router run` as a cluster runs it: two processes with
//! `--leader-elect` against the shared control plane, probed with
//! `status-router probe`, stopped with SIGTERM.
//!
//! What a status write by the leader and nothing by the standby look like is
//! tested in-process in `tests/integration/tests/it/leader_election.rs`; here:
//! exactly one process holds the Lease and says so in
//! `leader_election_master_status`, both are ready and live, every metric of
//! the contract is served, SIGTERM gives exit 0 and a released Lease that the
//! other process takes at once, and the logs have no ANSI escape codes when
//! stderr is a file (JSON: one object a line).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use tempfile::TempDir;

use super::status_router;

/// Every metric name of the CLI contract.
const METRICS: &[&str] = &[
    "controller_runtime_reconcile_total",
    "controller_runtime_reconcile_errors_total",
    "controller_runtime_reconcile_time_seconds",
    "controller_runtime_max_concurrent_reconciles",
    "controller_runtime_active_workers",
    "workqueue_depth",
    "workqueue_adds_total",
    "workqueue_retries_total",
    "workqueue_queue_duration_seconds",
    "workqueue_work_duration_seconds",
    "leader_election_master_status",
    "status_router_reconciles_total",
    "status_router_reconcile_errors_total",
    "status_router_policy_errors_total",
    "status_router_aggregate_refusals_total",
    "status_router_status_writes_total",
    "status_router_label_writes_total",
    "status_router_policy_swaps_total",
    "status_router_policy_info",
    "status_router_policy_call_duration_seconds",
];

const TIMEOUT: Duration = Duration::from_secs(30);

/// One `status-router run --leader-elect` process.
struct Replica {
    name: &'static str,
    child: Child,
    addrs: PathBuf,
    log: PathBuf,
}

impl Replica {
    fn start(
        dir: &TempDir,
        wds_name: &str,
        lease_ns: &str,
        name: &'static str,
        json: bool,
    ) -> Self {
        let addrs = dir.path().join(format!("{name}.addrs"));
        let log = dir.path().join(format!("{name}.log"));
        let kubeconfig = testenv::shared().kubeconfig_path().to_path_buf();
        let mut command = Command::new(env!("CARGO_BIN_EXE_status-router"));
        command
            .args([
                "run",
                "--wds-name",
                wds_name,
                "--leader-elect",
                "--workers",
                "2",
            ])
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["--leader-election-namespace", lease_ns])
            .args(["--leader-election-lease-duration", "6s"])
            .args(["--leader-election-renew-deadline", "4s"])
            .args(["--leader-election-retry-period", "1s"])
            .args([
                "--health-addr",
                "127.0.0.1:0",
                "--metrics-addr",
                "127.0.0.1:0",
            ])
            .arg("--bound-addrs-file")
            .arg(&addrs)
            .arg("--policy-cache-dir")
            .arg(dir.path().join("cache"))
            .args(["--log-format", if json { "json" } else { "text" }])
            .env("POD_NAME", name)
            .env("RUST_LOG", "info")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("create the log file"));
        let child = command.spawn().expect("start status-router run");
        Self {
            name,
            child,
            addrs,
            log,
        }
    }

    /// `status-router probe WHAT` against this replica: (passed, body).
    fn probe(&self, what: &str) -> (bool, String) {
        let path = self.addrs.to_str().expect("UTF-8 path");
        let run = status_router(&["probe", what, "--bound-addrs-file", path], None);
        (run.success, format!("{}{}", run.stdout, run.stderr))
    }

    fn wait_probe(&self, what: &str) -> String {
        wait(&format!("{} to pass {what}", self.name), || {
            if !self.addrs.exists() {
                return Err("no bound-addresses file yet".into());
            }
            match self.probe(what) {
                (true, body) => Ok(body),
                (false, body) => Err(body),
            }
        })
    }

    fn master_status(&self, lease: &str) -> Option<u8> {
        let (ok, body) = self.probe("metrics");
        let line = format!("leader_election_master_status{{name=\"{lease}\"}} ");
        let value = body.lines().find_map(|l| l.strip_prefix(line.as_str()))?;
        ok.then(|| value.trim().parse().ok()).flatten()
    }

    fn sigterm(&self) {
        // SAFETY: kill(2) on the PID of a child we spawned and have not reaped.
        let rc = unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        assert_eq!(rc, 0, "send SIGTERM");
    }

    fn wait_exit(&mut self) -> ExitStatus {
        let child = &mut self.child;
        wait("the process to exit", || match child.try_wait() {
            Ok(Some(status)) => Ok(status),
            Ok(None) => Err("still running".into()),
            Err(e) => Err(e.to_string()),
        })
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).expect("read the log")
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `probe` every 100 ms until it is `Ok`, or panics after [`TIMEOUT`].
fn wait<T>(what: &str, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    loop {
        match probe() {
            Ok(value) => return value,
            Err(last) if start.elapsed() > TIMEOUT => {
                panic!("timed out waiting for {what}; last: {last}")
            }
            // Poll interval.
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn holder(runtime: &tokio::runtime::Runtime, ns: &str, name: &str) -> Option<String> {
    runtime.block_on(async {
        let wds = testenv::wds_client().await;
        let lease = Api::<Lease>::namespaced(wds, ns).get(name).await.ok()?;
        lease.spec?.holder_identity
    })
}

fn assert_no_escape_codes(who: &str, log: &str) {
    assert!(!log.is_empty(), "{who} logged nothing");
    assert!(
        !log.contains('\x1b'),
        "{who}: ANSI escape codes in a log written to a file:\n{log}"
    );
}

#[test]
fn two_replicas_one_leader_probes_metrics_and_a_clean_hand_over_on_sigterm() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let lease_ns = runtime.block_on(async {
        let wds = testenv::wds_client().await;
        let crds = status_router::kubestellar::crds_yaml();
        testenv::install_crds(&wds, &crds)
            .await
            .expect("CRDs in the WDS");
        testenv::install_crds(&testenv::its_client().await, &crds)
            .await
            .expect("CRDs in the ITS");
        testenv::create_namespace(&wds, "lease").await
    });
    let dir = TempDir::new().unwrap();
    let wds_name = testenv::unique_name("wds");
    let lease = format!("status-router-{wds_name}");
    let mut a = Replica::start(&dir, &wds_name, &lease_ns, "replica-a", true);
    let mut b = Replica::start(&dir, &wds_name, &lease_ns, "replica-b", false);

    for r in [&a, &b] {
        assert_eq!(
            r.wait_probe("readyz"),
            "ok\n",
            "{} is ready, leader or not",
            r.name
        );
        assert_eq!(r.wait_probe("livez"), "ok\n");
    }
    let leader = wait("a holder of the Lease", || {
        holder(&runtime, &lease_ns, &lease).ok_or_else(|| "no holder".to_string())
    });
    let (leading, standing_by) = if leader == "replica-a" {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    assert_eq!(leading.name, leader);
    wait("master status 1 on the leader", || {
        match leading.master_status(&lease) {
            Some(1) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    assert_eq!(
        standing_by.master_status(&lease),
        Some(0),
        "the standby does not lead"
    );
    let metrics = standing_by.wait_probe("metrics");
    for name in METRICS {
        assert!(
            metrics.contains(&format!("\n{name}")),
            "no {name} in\n{metrics}"
        );
    }
    assert!(
        metrics.contains("status_router_status_writes_total 0\n"),
        "the standby wrote nothing:\n{metrics}"
    );
    let policy = standing_by.wait_probe("policy");
    assert!(policy.contains("\"digest\""), "{policy}");

    // SIGTERM: exit 0, the Lease released, the standby leads at once.
    leading.sigterm();
    let stopped = Instant::now();
    let status = leading.wait_exit();
    assert!(
        status.success(),
        "SIGTERM gives exit 0, got {status}:\n{}",
        leading.log()
    );
    assert_ne!(
        holder(&runtime, &lease_ns, &lease).as_deref(),
        Some(leader.as_str()),
        "the leader released the Lease before it exited"
    );
    wait("the standby to take the Lease", || {
        match holder(&runtime, &lease_ns, &lease) {
            Some(h) if h == standing_by.name => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    let took_over = stopped.elapsed();
    assert!(
        took_over < Duration::from_secs(5),
        "a released Lease is taken within a few retry periods, not at its expiry (6 s): {took_over:?}"
    );
    wait("master status 1 on the new leader", || {
        match standing_by.master_status(&lease) {
            Some(1) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    standing_by.sigterm();
    assert!(standing_by.wait_exit().success());
    assert_eq!(
        holder(&runtime, &lease_ns, &lease),
        None,
        "released on exit"
    );

    // Logs written to a file: no escape codes; JSON: one object a line.
    for r in [&a, &b] {
        assert_no_escape_codes(r.name, &r.log());
    }
    let json = a.log();
    for line in json.lines().filter(|l| !l.trim().is_empty()) {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON object ({e}): {line:?}"));
        assert!(value.is_object() && value["level"].is_string(), "{line}");
    }
    assert!(json.contains("\"policy loaded\""), "{json}");
    assert!(b.log().contains("INFO"), "text logs: {}", b.log());
}

#[test]
fn probe_fails_with_the_reason_when_nothing_answers_or_no_server_is_named() {
    let dir = TempDir::new().unwrap();
    let run = status_router(&["probe", "readyz", "--addr", "127.0.0.1:1"], None);
    assert!(!run.success);
    assert!(
        run.stderr.contains("GET http://127.0.0.1:1/readyz"),
        "{}",
        run.stderr
    );
    let missing = dir.path().join("absent");
    let run = status_router(
        &["probe", "metrics", "--bound-addrs-file", path_str(&missing)],
        None,
    );
    assert!(
        !run.success && run.stderr.contains("cannot read"),
        "{}",
        run.stderr
    );
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}
