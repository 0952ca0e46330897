//! The controller as operators run it: a `status-router run` process, with
//! its policy in a watched file, SIGKILLed and started again by the suite.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The `status-router` binary beside this test binary (target/<profile>/).
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let binary = profile.join("status-router");
    assert!(
        binary.is_file(),
        "the chaos suite runs the real controller, and {} is missing: build it first with \
         `cargo build -p status-router --bin status-router` (`cargo xtask test` and \
         `cargo xtask chaos` do)",
        binary.display()
    );
    binary
}

/// One `status-router run` at a time, its output appended to one log.
pub struct Process {
    binary: PathBuf,
    args: Vec<String>,
    bound_addrs: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    pub starts: usize,
}

impl Process {
    pub fn new(kubeconfig: &Path, wds_name: &str, policy: &Path, dir: &Path) -> Self {
        let args = [
            "run",
            "--wds-name",
            wds_name,
            "--kubeconfig",
            &kubeconfig.display().to_string(),
            "--policy",
            &policy.display().to_string(),
            "--policy-cache-dir",
            &dir.join("compiled").display().to_string(),
            // Its write counters tell when it last changed the WDS.
            "--metrics-addr",
            "127.0.0.1:0",
            "--bound-addrs-file",
            &dir.join("bound-addrs").display().to_string(),
        ]
        .map(String::from)
        .to_vec();
        Self {
            binary: binary(),
            args,
            bound_addrs: dir.join("bound-addrs"),
            // Outside the run's temp dir, so that it outlives a failed run.
            log: std::env::temp_dir().join(format!(
                "status-router-chaos-{}.log",
                dir.file_name().unwrap_or_default().to_string_lossy()
            )),
            child: None,
            starts: 0,
        }
    }

    pub fn log(&self) -> &Path {
        &self.log
    }

    /// A way to read the running controller's write counters from another thread.
    pub fn writes(&self) -> Writes {
        Writes {
            binary: self.binary.clone(),
            bound_addrs: self.bound_addrs.clone(),
        }
    }

    pub fn start(&mut self) {
        assert!(self.child.is_none(), "one controller at a time");
        let out = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the controller log");
        let err = out.try_clone().expect("dup the log handle");
        let mut cmd = Command::new(&self.binary);
        cmd.args(&self.args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        self.child = Some(testenv::spawn_child(cmd).expect("start status-router run"));
        self.starts += 1;
    }

    /// SIGKILL, as the OOM killer or a node failure would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Fails if the controller exited by itself (it must survive every fault).
    pub fn assert_running(&mut self) {
        if let Some(child) = self.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            panic!(
                "the controller exited ({status}); last lines of {}:\n{}",
                self.log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Reads a running controller's status and label writes from its `/metrics`
/// (through `status-router probe metrics`, the same HTTP client as the
/// exec probes).
pub struct Writes {
    binary: PathBuf,
    bound_addrs: PathBuf,
}

impl Writes {
    /// The sum of the two write counters; `None` while no controller serves
    /// its metrics (killed, starting).
    pub fn now(&self) -> Option<u64> {
        let out = Command::new(&self.binary)
            .arg("probe")
            .arg("metrics")
            .arg("--bound-addrs-file")
            .arg(&self.bound_addrs)
            .stderr(Stdio::null())
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let counter = |name: &str| {
            text.lines().find_map(|l| {
                let (n, v) = l.split_once(' ')?;
                (n == name).then(|| v.trim().parse::<u64>().ok()).flatten()
            })
        };
        Some(
            counter("status_router_status_writes_total")?
                + counter("status_router_label_writes_total")?,
        )
    }
}
