//! Faults a chaos test injects into a [`ControlPlane`]: SIGKILL and restart
//! of etcd or of an API server, SIGSTOP and SIGCONT, and etcd compaction.
//!
//! Why here: only the control plane knows its children (by the PID of the
//! exact `Child` it spawned, never by name) and the arguments they were
//! started with; a restarted server keeps its port, its data (etcd's data
//! dir is kept) and its certificates, so clients reconnect as they would to
//! a real server coming back.

use std::time::{Duration, Instant};

use crate::Error;
use crate::control_plane::{ControlPlane, ready_timeout};
use crate::setup;

/// The processes of a control plane, as named in [`ControlPlane::pids`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    Etcd,
    Wds,
    Its,
}

impl Server {
    /// The process name: `etcd`, `wds-apiserver`, `its-apiserver`.
    pub fn name(self) -> &'static str {
        match self {
            Server::Etcd => "etcd",
            Server::Wds => "wds-apiserver",
            Server::Its => "its-apiserver",
        }
    }
}

impl ControlPlane {
    /// Sends `signal` to the server's process.
    fn signal(&self, server: Server, signal: libc::c_int) -> Result<(), Error> {
        let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        let Some((_, child)) = children.iter_mut().find(|(n, _)| n == server.name()) else {
            return Err(Error::io(
                format!("signalling {}", server.name()),
                std::io::Error::other("no such process in this control plane"),
            ));
        };
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Error::io(
                format!("signalling {}", server.name()),
                std::io::Error::other(format!("it has exited ({status})")),
            ));
        }
        let pid = libc::pid_t::try_from(child.id())
            .map_err(|e| Error::io("a PID", std::io::Error::other(e)))?;
        // SAFETY: kill(2) on the PID of a child we spawned and have not reaped,
        // so it cannot have been reused by another process.
        if unsafe { libc::kill(pid, signal) } != 0 {
            return Err(Error::io(
                format!("signalling {}", server.name()),
                std::io::Error::last_os_error(),
            ));
        }
        if signal == libc::SIGKILL {
            let _ = child.wait();
        }
        Ok(())
    }

    /// SIGKILLs the server (and reaps it); [`ControlPlane::restart`] starts it again.
    pub fn kill(&self, server: Server) -> Result<(), Error> {
        self.signal(server, libc::SIGKILL)
    }

    /// SIGSTOPs the server: it keeps its connections but answers nothing.
    pub fn pause(&self, server: Server) -> Result<(), Error> {
        self.signal(server, libc::SIGSTOP)
    }

    /// SIGCONTs a paused server.
    pub fn resume(&self, server: Server) -> Result<(), Error> {
        self.signal(server, libc::SIGCONT)
    }

    /// Starts the server again, as it was started (killing it first if it
    /// still runs), and waits until it is ready; returns how long that took.
    pub fn restart(&self, server: Server) -> Result<Duration, Error> {
        let t0 = Instant::now();
        let index = {
            let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
            let index = children.iter().position(|(n, _)| n == server.name());
            if let Some(i) = index {
                let (_, mut child) = children.remove(i);
                let _ = child.kill();
                let _ = child.wait();
            }
            index
        };
        let timeout = ready_timeout();
        match server {
            Server::Etcd => self.spawn_etcd(self.etcd_peer_port)?,
            Server::Wds | Server::Its => {
                let creds = self.creds.as_ref().ok_or_else(|| {
                    Error::io("restarting", std::io::Error::other("no credentials"))
                })?;
                let api = if server == Server::Wds {
                    self.wds().clone()
                } else {
                    self.its().clone()
                };
                self.spawn_apiserver(&api, creds)?;
            }
        }
        if let Some(i) = index {
            // Back in its place, so that `stop` still stops etcd last.
            let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
            let entry = children.pop().expect("the child just spawned");
            let at = i.min(children.len());
            children.insert(at, entry);
        }
        match server {
            Server::Etcd => self.wait_etcd(timeout)?,
            Server::Wds => self.wait_apiserver(&self.wds().clone(), timeout)?,
            Server::Its => self.wait_apiserver(&self.its().clone(), timeout)?,
        }
        Ok(t0.elapsed())
    }

    /// Waits up to `timeout` for the server to be ready (etcd healthy, an
    /// API server's `/readyz` ok).
    pub fn ready(&self, server: Server, timeout: Duration) -> bool {
        match server {
            Server::Etcd => self.wait_etcd(timeout).is_ok(),
            Server::Wds => self.wait_apiserver(&self.wds().clone(), timeout).is_ok(),
            Server::Its => self.wait_apiserver(&self.its().clone(), timeout).is_ok(),
        }
    }

    /// Compacts etcd's history up to its current revision (physically), as
    /// the API server's periodic compaction does, so that a watch resuming
    /// from an older resourceVersion gets 410 Gone. Returns the revision.
    pub fn compact_etcd(&self) -> Result<i64, Error> {
        let addr = self.etcd_url().trim_start_matches("http://").to_string();
        let etcd = |path: &str, body: &str| {
            setup::etcd_post(&addr, path, body).map_err(|e| Error::io(format!("etcd {path}"), e))
        };
        // The revision is in the header of any read ("Lw==" is the key "/").
        let range = etcd("/v3/kv/range", r#"{"key":"Lw==","limit":1}"#)?;
        let revision = serde_json::from_str::<serde_json::Value>(&range)
            .ok()
            .and_then(|v| v["header"]["revision"].as_str()?.parse::<i64>().ok())
            .ok_or_else(|| {
                Error::io(
                    "reading etcd's revision",
                    std::io::Error::other(format!("unexpected answer {range}")),
                )
            })?;
        etcd(
            "/v3/kv/compaction",
            &format!(r#"{{"revision":"{revision}","physical":true}}"#),
        )?;
        Ok(revision)
    }
}
