//! [`ControlPlane`]: one etcd and two kube-apiservers (WDS and ITS) on loopback.
//!
//! Why two servers on one etcd: KubeStellar's WDS and ITS are separate API servers; sharing one
//! etcd under the prefixes `/wds` and `/its` gives two fully independent servers for the cost of
//! one database process. Everything lives in a fresh temp dir named
//! `status-router-testenv-<pid>-<n>` (data, certificates, logs, kubeconfig), removed on stop.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::Error;
use crate::process::{self, log_tail};
use crate::setup::{self, Credentials};

/// Prefix of the temp dirs (see [`process::remove_stale_dirs`]).
const DIR_PREFIX: &str = "status-router-testenv-";
/// Time allowed for each server to become ready (override: `STATUS_ROUTER_CONTROL_PLANE_TIMEOUT_SECS`).
const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(120);
/// Lines of a server log quoted in errors.
const LOG_TAIL_LINES: usize = 30;

/// One kube-apiserver of the control plane.
#[derive(Debug, Clone)]
pub struct ApiServer {
    /// Kubeconfig context name (`wds` or `its`), also the etcd prefix (`/wds`, `/its`).
    pub context: String,
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    /// The server's combined stdout/stderr.
    pub log: PathBuf,
}

/// How the API servers authorize requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Authorization {
    /// Every authenticated request is allowed: the tests' default.
    #[default]
    AlwaysAllow,
    /// Kubernetes RBAC, as in a real cluster. The testenv admin token is in
    /// `system:masters`, so admin clients work as before; other identities
    /// (service-account tokens from the TokenRequest API) get only what
    /// RBAC objects grant them.
    Rbac,
}

/// A running local control plane; stops its processes and removes its dir on drop.
#[derive(Debug)]
pub struct ControlPlane {
    dir: PathBuf,
    authorization: Authorization,
    kubeconfig: PathBuf,
    bin_dir: PathBuf,
    etcd_url: String,
    wds: ApiServer,
    its: ApiServer,
    startup: Duration,
    /// Children in start order (etcd first); stopped in reverse order.
    pub(crate) children: Mutex<Vec<(String, Child)>>,
    /// What the servers were started with, to restart them (see `faults`).
    pub(crate) creds: Option<Credentials>,
    pub(crate) etcd_peer_port: u16,
}

impl ControlPlane {
    /// Starts etcd and the WDS and ITS kube-apiservers and waits until both are ready.
    ///
    /// Blocking; safe to call from inside a tokio runtime (readiness is polled on a separate
    /// thread with its own runtime). Fails with [`Error::BinariesMissing`] if the binaries were
    /// not built (run `scripts/build-control-plane.sh`).
    pub fn start() -> Result<ControlPlane, Error> {
        Self::start_with(Authorization::AlwaysAllow)
    }

    /// [`ControlPlane::start`] with the given authorization mode.
    pub fn start_with(authorization: Authorization) -> Result<ControlPlane, Error> {
        // Free ports are chosen before the servers bind them; another process may take one
        // meanwhile. That is the one startup failure worth retrying.
        let mut attempt = 1;
        loop {
            match Self::start_once(authorization) {
                Err(e) if attempt < 3 && e.is_port_conflict() => {
                    crate::say!("control plane: a port was taken meanwhile, retrying: {e}");
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    fn start_once(authorization: Authorization) -> Result<ControlPlane, Error> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let t0 = Instant::now();
        let bin_dir = setup::find_binaries()?;
        crate::say!(
            "control plane: using cached binaries at {}",
            bin_dir.display()
        );

        let tmp = std::env::temp_dir();
        process::remove_stale_dirs(&tmp, DIR_PREFIX);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = tmp.join(format!("{DIR_PREFIX}{}-{n}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(|e| Error::io(format!("cleaning {}", dir.display()), e))?;
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;

        let ports = setup::free_ports(4)?;
        let server = |context: &str, port: u16| ApiServer {
            context: context.to_string(),
            url: format!("https://127.0.0.1:{port}"),
            log: dir.join(format!("{context}-apiserver.log")),
        };
        let mut cp = ControlPlane {
            kubeconfig: dir.join("kubeconfig"),
            etcd_url: format!("http://127.0.0.1:{}", ports[0]),
            wds: server("wds", ports[2]),
            its: server("its", ports[3]),
            dir,
            authorization,
            bin_dir,
            startup: Duration::ZERO,
            children: Mutex::new(Vec::new()),
            creds: None,
            etcd_peer_port: ports[1],
        };
        // From here on, an early return drops `cp`, which stops whatever was started.
        let creds = setup::write_credentials(&cp.dir)?;
        setup::write_kubeconfig(
            &cp.kubeconfig,
            &creds,
            &[("wds", &cp.wds.url), ("its", &cp.its.url)],
        )?;
        let timeout = ready_timeout();

        cp.spawn_etcd(ports[1])?;
        cp.wait_etcd(timeout)?;
        for api in [cp.wds.clone(), cp.its.clone()] {
            cp.spawn_apiserver(&api, &creds)?;
        }
        for api in [cp.wds.clone(), cp.its.clone()] {
            cp.wait_apiserver(&api, timeout)?;
        }
        cp.creds = Some(creds);
        cp.startup = t0.elapsed();
        crate::say!(
            "control plane: etcd + WDS ({}) + ITS ({}) ready in {:.1?}; kubeconfig {}",
            cp.wds.url,
            cp.its.url,
            cp.startup,
            cp.kubeconfig.display()
        );
        Ok(cp)
    }

    fn spawn(&self, name: &str, program: &str, args: Vec<String>, log: &Path) -> Result<(), Error> {
        // A restarted server appends to the log of its earlier runs.
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| Error::io(format!("creating {}", log.display()), e))?;
        let err = out
            .try_clone()
            .map_err(|e| Error::io("duplicating a log file handle", e))?;
        let mut cmd = Command::new(self.bin_dir.join(program));
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .current_dir(&self.dir);
        let child = process::spawn(cmd).map_err(|source| Error::Spawn {
            name: name.to_string(),
            path: self.bin_dir.join(program),
            source,
        })?;
        self.children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((name.to_string(), child));
        Ok(())
    }

    pub(crate) fn spawn_etcd(&self, peer_port: u16) -> Result<(), Error> {
        let args = setup::etcd_args(&self.dir, &self.etcd_url, peer_port);
        self.spawn("etcd", "etcd", args, &self.dir.join("etcd.log"))
    }

    pub(crate) fn spawn_apiserver(
        &self,
        api: &ApiServer,
        creds: &Credentials,
    ) -> Result<(), Error> {
        let mode = match self.authorization {
            Authorization::AlwaysAllow => "AlwaysAllow",
            Authorization::Rbac => "RBAC",
        };
        let mut args =
            setup::apiserver_args(&self.dir, &self.etcd_url, &api.context, &api.url, creds);
        args.push(format!("--authorization-mode={mode}"));
        let name = format!("{}-apiserver", api.context);
        self.spawn(&name, "kube-apiserver", args, &api.log)
    }

    /// Fails with the log tail if the named child has already exited.
    fn check_alive(&self, name: &str, log: &Path) -> Result<(), Error> {
        let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, child)) = children.iter_mut().find(|(n, _)| n == name)
            && let Ok(Some(status)) = child.try_wait()
        {
            return Err(Error::Exited {
                name: name.to_string(),
                status: status.to_string(),
                log: log.to_path_buf(),
                tail: log_tail(log, LOG_TAIL_LINES),
            });
        }
        Ok(())
    }

    pub(crate) fn wait_etcd(&self, timeout: Duration) -> Result<(), Error> {
        let log = self.dir.join("etcd.log");
        let addr = self.etcd_url.trim_start_matches("http://").to_string();
        let deadline = Instant::now() + timeout;
        let mut last = String::from("no answer yet");
        while Instant::now() < deadline {
            self.check_alive("etcd", &log)?;
            match setup::etcd_health(&addr) {
                Ok(body) if body.contains("\"health\":\"true\"") => return Ok(()),
                Ok(body) => last = body,
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(Error::NotReady {
            name: "etcd".into(),
            timeout,
            last,
            log: log.clone(),
            tail: log_tail(&log, LOG_TAIL_LINES),
        })
    }

    pub(crate) fn wait_apiserver(&self, api: &ApiServer, timeout: Duration) -> Result<(), Error> {
        let name = format!("{}-apiserver", api.context);
        let deadline = Instant::now() + timeout;
        let mut last = String::from("no answer yet");
        // A private runtime on a scoped thread: this may be called from inside a test's runtime.
        let outcome = std::thread::scope(|s| {
            s.spawn(|| -> Result<bool, Error> {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| Error::io("building a tokio runtime", e))?;
                rt.block_on(async {
                    let client = self.client(&api.context).await?;
                    while Instant::now() < deadline {
                        self.check_alive(&name, &api.log)?;
                        let req = http::Request::get("/readyz")
                            .body(Vec::new())
                            .expect("static request");
                        match client.request_text(req).await {
                            Ok(body) if body.trim() == "ok" => return Ok(true),
                            Ok(body) => last = body,
                            Err(e) => last = e.to_string(),
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Ok(false)
                })
            })
            .join()
            .unwrap_or_else(|_| {
                Err(Error::io(
                    "readiness thread",
                    std::io::Error::other("panicked"),
                ))
            })
        })?;
        if outcome {
            return Ok(());
        }
        Err(Error::NotReady {
            name,
            timeout,
            last,
            log: api.log.clone(),
            tail: log_tail(&api.log, LOG_TAIL_LINES),
        })
    }

    /// A new client for a kubeconfig context (`wds` or `its`), bound to the calling runtime.
    pub async fn client(&self, context: &str) -> Result<Client, Error> {
        Ok(Client::try_from(self.config(context).await?)?)
    }

    /// The client configuration of a kubeconfig context (`wds` or `its`), as the
    /// admin; a test may swap its `auth_info` to act as another identity.
    pub async fn config(&self, context: &str) -> Result<kube::Config, Error> {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig)?;
        let options = KubeConfigOptions {
            context: Some(context.to_string()),
            ..Default::default()
        };
        let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options).await?;
        // As `status_router::runtime::api::client`: no hidden retries, so an
        // in-process controller sees its servers as the binary does.
        config.default_retry = false;
        Ok(config)
    }

    /// A new client for the WDS (create one per test: clients are bound to their runtime).
    pub async fn wds_client(&self) -> Result<Client, Error> {
        self.client("wds").await
    }

    /// A new client for the ITS.
    pub async fn its_client(&self) -> Result<Client, Error> {
        self.client("its").await
    }

    /// The kubeconfig with contexts `wds` (current) and `its`.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The directory of the Kubernetes binaries this control plane runs.
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// The temp dir holding data, certificates and logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The WDS server.
    pub fn wds(&self) -> &ApiServer {
        &self.wds
    }

    /// The ITS server.
    pub fn its(&self) -> &ApiServer {
        &self.its
    }

    /// etcd's client URL (`http://127.0.0.1:<port>`).
    pub fn etcd_url(&self) -> &str {
        &self.etcd_url
    }

    /// How long [`ControlPlane::start`] took.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// PIDs of the processes this control plane started and that still run, by name.
    pub fn pids(&self) -> Vec<(String, u32)> {
        let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        children
            .iter_mut()
            .filter_map(|(n, c)| matches!(c.try_wait(), Ok(None)).then(|| (n.clone(), c.id())))
            .collect()
    }

    /// Stops exactly the processes this control plane started (SIGTERM, then SIGKILL after 10 s)
    /// and removes its temp dir. Idempotent; also called on drop.
    pub fn stop(&self) {
        let children =
            std::mem::take(&mut *self.children.lock().unwrap_or_else(|e| e.into_inner()));
        let stopped: Vec<String> = children
            .into_iter()
            .rev()
            .map(|(name, mut child)| {
                let pid = child.id();
                process::terminate(&mut child, Duration::from_secs(10));
                format!("{name} (pid {pid})")
            })
            .collect();
        if self.dir.exists() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        if !stopped.is_empty() {
            crate::say!(
                "control plane: stopped {}; removed {}",
                stopped.join(", "),
                self.dir.display()
            );
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop();
    }
}

pub(crate) fn ready_timeout() -> Duration {
    std::env::var("STATUS_ROUTER_CONTROL_PLANE_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(DEFAULT_READY_TIMEOUT, Duration::from_secs)
}
