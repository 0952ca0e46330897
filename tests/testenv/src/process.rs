//! Child processes that can never outlive the test binary.
//!
//! Why this module exists: a control plane shared by all tests of a test binary lives in a
//! `static` and is therefore never dropped, and a test binary can also die by a panic with
//! `panic = "abort"`, a signal, or a timeout kill. Without care every such run would leak an etcd
//! and two kube-apiservers. So:
//!
//! * every child is spawned with `prctl(PR_SET_PDEATHSIG, SIGKILL)`, so the kernel kills it when
//!   its parent dies;
//! * PDEATHSIG fires when the *thread* that forked the child exits, not the process. Tokio tests
//!   run each `#[tokio::test]` on a thread that ends with the test, so children are forked by one
//!   dedicated "spawner" thread that never exits (it blocks on a channel that is never closed);
//! * a normal stop is SIGTERM, a grace period, then SIGKILL, by the PID of the exact `Child` we
//!   spawned (never by process name);
//! * a SIGKILLed child cannot remove its temp dir, so [`remove_stale_dirs`] deletes the temp dirs
//!   of earlier runs whose owning process (the PID in the dir name) is gone. If that PID has
//!   been reused by an unrelated live process, the dir is left until a later run finds it dead.
//! * the shared control plane is stopped normally by an `atexit` hook (see `shared()` in lib.rs);
//!   PDEATHSIG is the safety net for deaths that skip `atexit`.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

type SpawnReply = Sender<std::io::Result<Child>>;

/// The never-ending thread that forks every child (see the module docs).
fn spawner() -> &'static Mutex<Sender<(Command, SpawnReply)>> {
    static SPAWNER: OnceLock<Mutex<Sender<(Command, SpawnReply)>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = channel::<(Command, SpawnReply)>();
        std::thread::Builder::new()
            .name("testenv-spawner".into())
            .spawn(move || {
                // The sender lives in a static, so `recv` never fails and this thread lives as
                // long as the process.
                while let Ok((mut cmd, reply)) = rx.recv() {
                    let _ = reply.send(spawn_with_pdeathsig(&mut cmd));
                }
                // Unreachable in practice; never return so PDEATHSIG cannot fire early.
                loop {
                    std::thread::park();
                }
            })
            .expect("spawn the testenv-spawner thread");
        Mutex::new(tx)
    })
}

fn spawn_with_pdeathsig(cmd: &mut Command) -> std::io::Result<Child> {
    let parent = std::process::id();
    // SAFETY: the closure runs between fork and exec and only calls async-signal-safe libc
    // functions (prctl, getppid, _exit); it does not allocate.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl: then nobody would kill us.
            if libc::getppid() as u32 != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// Spawns `cmd` from the long-lived spawner thread, with PDEATHSIG set to SIGKILL.
pub(crate) fn spawn(cmd: Command) -> std::io::Result<Child> {
    let (reply_tx, reply_rx) = channel();
    spawner()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((cmd, reply_tx))
        .map_err(|_| std::io::Error::other("testenv spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| std::io::Error::other("testenv spawner thread dropped the request"))?
}

/// Stops one child we spawned: SIGTERM, wait up to `grace`, then SIGKILL; always reaps it.
pub(crate) fn terminate(child: &mut Child, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: plain syscall on the PID of a child we have not reaped yet, so it cannot
        // have been reused by another process.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Whether a process with this PID currently exists.
pub(crate) fn pid_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// Removes `<parent>/<prefix><pid>-*` dirs whose PID is not a live process: leftovers of test
/// binaries that were killed (their children died by PDEATHSIG but nobody removed the files).
pub(crate) fn remove_stale_dirs(parent: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !pid_alive(pid) {
            match std::fs::remove_dir_all(entry.path()) {
                Ok(()) => crate::say!(
                    "control plane: removed stale dir of dead process {pid}: {}",
                    entry.path().display()
                ),
                Err(e) => crate::say!(
                    "control plane: could not remove stale dir {}: {e}",
                    entry.path().display()
                ),
            }
        }
    }
}

/// The last `lines` lines of a log file, for error messages.
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("<cannot read {}: {e}>", path.display()),
    }
}
