//! The controller under test and its counters, read from its /metrics
//! endpoint (child process) or its shared metrics (in-process).

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use kube::Client;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::procs::proc_status_kib;
use crate::{Options, WDS_NAME};

#[derive(Clone, Copy, Debug, Default)]
pub struct Counters {
    pub reconciles: u64,
    pub reconcile_errors: u64,
    pub policy_errors: u64,
    pub status_writes: u64,
    pub label_writes: u64,
}

impl Counters {
    pub fn minus(&self, o: &Counters) -> Counters {
        Counters {
            reconciles: self.reconciles - o.reconciles,
            reconcile_errors: self.reconcile_errors - o.reconcile_errors,
            policy_errors: self.policy_errors - o.policy_errors,
            status_writes: self.status_writes - o.status_writes,
            label_writes: self.label_writes - o.label_writes,
        }
    }

    pub fn parse(text: &str) -> Counters {
        let mut c = Counters::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((key, value)) = line.split_once(' ') else {
                continue;
            };
            let value: u64 = value.trim().parse().unwrap_or(0);
            match key {
                "status_router_reconciles_total" => c.reconciles = value,
                "status_router_reconcile_errors_total" => c.reconcile_errors = value,
                "status_router_policy_errors_total" => c.policy_errors = value,
                "status_router_status_writes_total" => c.status_writes = value,
                "status_router_label_writes_total" => c.label_writes = value,
                _ => {}
            }
        }
        c
    }
}

impl std::fmt::Display for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "status_writes {} label_writes {} reconciles {} reconcile_errors {} policy_errors {}",
            self.status_writes,
            self.label_writes,
            self.reconciles,
            self.reconcile_errors,
            self.policy_errors
        )
    }
}

/// The controller under test: the `status-router run` binary (default) or in-process.
pub enum Ctl {
    Child {
        child: Child,
        metrics: SocketAddr,
    },
    InProc {
        task: Option<tokio::task::JoinHandle<()>>,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        metrics: Arc<status_router::runtime::metrics::Metrics>,
    },
}

impl Ctl {
    pub async fn start(
        opts: &Options,
        plane: &testenv::ControlPlane,
        wds: Client,
        its: Client,
    ) -> anyhow::Result<Ctl> {
        if opts.inproc {
            use status_router::controller::{Config, Controller};
            use status_router::policy::{DEFAULT_POLICY, PolicyEngine};
            let policy = PolicyEngine::new()?.load(DEFAULT_POLICY)?;
            let controller = Controller::new(
                wds,
                its,
                policy,
                Config {
                    wds_name: WDS_NAME.into(),
                    workers: opts.workers,
                },
            );
            let metrics = controller.metrics();
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let task = tokio::spawn(async move {
                if let Err(e) = controller
                    .run(async {
                        let _ = stopped.await;
                    })
                    .await
                {
                    eprintln!("controller: {e}");
                }
            });
            return Ok(Ctl::InProc {
                task: Some(task),
                stop: Some(stop),
                metrics,
            });
        }
        // Cargo builds the package's binary (release, for `cargo bench`) and says where.
        let binary = std::path::PathBuf::from(env!("CARGO_BIN_EXE_status-router"));
        if !binary.exists() {
            bail!(
                "{} is missing: build it with `cargo build --release -p status-router`",
                binary.display()
            );
        }
        let metrics = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?
        };
        let child = Command::new(&binary)
            .args(["run", "--wds-name", WDS_NAME, "--workers"])
            .arg(opts.workers.to_string())
            .arg("--metrics-addr")
            .arg(metrics.to_string())
            .arg("--kubeconfig")
            .arg(plane.kubeconfig_path())
            .env(
                "RUST_LOG",
                std::env::var("BENCH_RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("start {}", binary.display()))?;
        if opts.pin {
            crate::procs::pin(child.id(), 1).context("pin the controller to CPU 1")?;
        }
        let ctl = Ctl::Child { child, metrics };
        // Until the metrics endpoint answers, the controller is not up.
        let t = Instant::now();
        while ctl.counters().await.is_err() {
            if t.elapsed() > Duration::from_secs(30) {
                bail!("status-router did not serve /metrics on {metrics} within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(ctl)
    }

    pub fn pid(&self) -> Option<u32> {
        match self {
            Ctl::Child { child, .. } => Some(child.id()),
            Ctl::InProc { .. } => None,
        }
    }

    pub async fn counters(&self) -> anyhow::Result<Counters> {
        match self {
            Ctl::InProc { metrics: m, .. } => Ok(Counters {
                reconciles: m.reconciles(),
                reconcile_errors: m.reconcile_errors(),
                policy_errors: m.policy_errors(),
                status_writes: m.status_writes(),
                label_writes: m.label_writes(),
            }),
            Ctl::Child { metrics, .. } => {
                let mut s = tokio::net::TcpStream::connect(metrics).await?;
                s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
                    .await?;
                let mut body = String::new();
                s.read_to_string(&mut body).await?;
                if !body.contains("status_router_") {
                    bail!("unexpected /metrics answer");
                }
                Ok(Counters::parse(&body))
            }
        }
    }

    /// Peak resident set of the controller process (this process when in-process).
    pub fn vm_hwm_kib(&self) -> Option<u64> {
        self.proc_status_kib("VmHWM")
    }

    pub fn proc_status_kib(&self, field: &str) -> Option<u64> {
        match self {
            Ctl::Child { child, .. } => proc_status_kib(&child.id().to_string(), field),
            Ctl::InProc { .. } => proc_status_kib("self", field),
        }
    }

    pub async fn stop(mut self) {
        match &mut self {
            Ctl::Child { child, .. } => {
                // SAFETY: kill(2) on the PID of a child we spawned and have not reaped.
                unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
                let t = Instant::now();
                while matches!(child.try_wait(), Ok(None)) {
                    if t.elapsed() > Duration::from_secs(10) {
                        let _ = child.kill();
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            Ctl::InProc { task, stop, .. } => {
                if let Some(stop) = stop.take() {
                    let _ = stop.send(());
                }
                if let Some(task) = task.take() {
                    let _ = task.await;
                }
            }
        }
    }
}

impl Drop for Ctl {
    fn drop(&mut self) {
        if let Ctl::Child { child, .. } = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
