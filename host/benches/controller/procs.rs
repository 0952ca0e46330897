//! Probes of /proc: resident set sizes and CPU time of the processes the
//! bench accounts for (control plane, bench, controller), and the machine's load.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

pub fn proc_status_kib(pid: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(&format!("{field}:")))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU seconds (user + system) of a process so far.
pub fn proc_cpu_secs(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some(ticks as f64 / hz)
}

/// The machine's CPUs, whatever this process is pinned to (which
/// `available_parallelism` would report).
pub fn online_cpus() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize
}

/// Pins every thread of `pid` to `cpu`; the threads it starts later inherit it.
pub fn pin(pid: u32, cpu: usize) -> anyhow::Result<()> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .with_context(|| format!("list the threads of pid {pid}"))?;
    for task in tasks {
        let tid: libc::pid_t = task?.file_name().to_string_lossy().parse()?;
        // SAFETY: cpu_set_t is plain data and zeroed is a valid empty set;
        // CPU_SET indexes its array with a bounds check (it panics past
        // CPU_SETSIZE), and the kernel reads `size_of::<cpu_set_t>()` bytes.
        let rc = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set)
        };
        let err = std::io::Error::last_os_error();
        // A thread may exit between the listing and the call.
        if rc != 0 && err.raw_os_error() != Some(libc::ESRCH) {
            bail!("pin thread {tid} of pid {pid} to CPU {cpu}: {err}");
        }
    }
    Ok(())
}

/// Busy and total jiffies of the whole machine.
pub fn machine_cpu() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().next() else {
        return (0, 0);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// The processes whose CPU the bench accounts for.
#[derive(Clone)]
pub struct ProcSet(Vec<(String, u32)>);

#[derive(Clone, Debug, Default)]
pub struct CpuSample {
    at: Option<Instant>,
    procs: BTreeMap<String, f64>,
    machine: (u64, u64),
}

#[derive(Clone, Debug, Default)]
pub struct CpuReport {
    /// CPU seconds per process over the phase.
    procs: BTreeMap<String, f64>,
    /// The machine's busy fraction over the phase (all CPUs).
    machine_busy: f64,
    span: Duration,
}

impl ProcSet {
    pub fn of_plane(plane: &testenv::ControlPlane) -> ProcSet {
        let mut v = plane.pids();
        v.push(("bench".into(), std::process::id()));
        ProcSet(v)
    }

    pub fn with(&self, pid: Option<u32>, name: &str) -> ProcSet {
        let mut v = self.0.clone();
        if let Some(pid) = pid {
            v.push((name.into(), pid));
        }
        ProcSet(v)
    }

    /// `--pin`: the WDS API server and etcd on CPU 0, the rest (the ITS API
    /// server, this process, and the controller it starts) on CPU 1, so that
    /// the server both writers load has a core of its own, as in production.
    pub fn pin(&self) -> anyhow::Result<()> {
        let cpus = online_cpus();
        if cpus < 2 {
            bail!("--pin needs 2 CPUs, this machine has {cpus}");
        }
        for (name, pid) in &self.0 {
            let cpu = if matches!(name.as_str(), "etcd" | "wds-apiserver") {
                0
            } else {
                1
            };
            pin(*pid, cpu).with_context(|| format!("pin {name}"))?;
        }
        Ok(())
    }

    pub fn without(&self, name: &str) -> ProcSet {
        ProcSet(self.0.iter().filter(|(n, _)| n != name).cloned().collect())
    }

    pub fn sample(&self) -> CpuSample {
        CpuSample {
            at: Some(Instant::now()),
            procs: self
                .0
                .iter()
                .filter_map(|(n, pid)| Some((n.clone(), proc_cpu_secs(*pid)?)))
                .collect(),
            machine: machine_cpu(),
        }
    }
}

impl CpuSample {
    pub fn since(&self, before: &CpuSample) -> CpuSample {
        CpuSample {
            at: self.at,
            procs: self
                .procs
                .iter()
                .map(|(n, v)| (n.clone(), v - before.procs.get(n).copied().unwrap_or(0.0)))
                .collect(),
            machine: (
                self.machine.0 - before.machine.0,
                self.machine.1 - before.machine.1,
            ),
        }
    }

    pub fn report(&self, span: Duration) -> CpuReport {
        CpuReport {
            procs: self.procs.clone(),
            machine_busy: self.machine.0 as f64 / self.machine.1.max(1) as f64,
            span,
        }
    }
}

impl std::fmt::Display for CpuReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.span.as_secs_f64().max(1e-9);
        let ours: f64 = self.procs.values().sum();
        for (name, cpu) in &self.procs {
            write!(f, "{name} {cpu:.1}s ({:.0}%), ", 100.0 * cpu / secs)?;
        }
        let cores = online_cpus() as f64;
        write!(
            f,
            "ours {ours:.1}s of {:.1}s x {cores} cores; machine busy {:.0}%",
            secs,
            100.0 * self.machine_busy
        )
    }
}
