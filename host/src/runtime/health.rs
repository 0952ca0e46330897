//! What `/readyz` and `/livez` tell, and why each says what it says.
//!
//! **Ready** means this replica could serve: both API servers reached, the
//! CRDs present, the watches synced. It does not depend on leadership: a
//! standby is ready too, or a rolling update (which waits for the new pod to
//! be ready before it stops the old leader) would never finish. From SIGTERM
//! on a replica is not ready, so that it leaves its Service at once.
//!
//! **Live** means the process is not wedged: the runtime answers (the probe
//! handler runs on it) and, with leader election, the lease task is alive and
//! a leader is within its renew deadline. A failed liveness probe restarts the
//! pod, which is what a replica that may no longer lead safely needs.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The answer to a probe: whether it passes, and a body that says which
/// check fails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub ok: bool,
    pub body: String,
}

/// The state probes read. Shared by the controller, the lease task and the
/// HTTP server.
#[derive(Debug, Default)]
pub struct Health {
    /// Both API servers answered and serve the CRDs (the preflight passed).
    connected: AtomicBool,
    bindings_synced: AtomicBool,
    work_statuses_synced: AtomicBool,
    terminating: AtomicBool,
    lease: OnceLock<Arc<LeaseLiveness>>,
}

impl Health {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The preflight passed: both API servers reached, CRDs present.
    pub fn set_connected(&self) {
        self.connected.store(true, Relaxed);
    }

    /// The Binding or the WorkStatus watch finished its first list.
    pub fn set_synced(&self, bindings: bool, work_statuses: bool) {
        self.bindings_synced.store(bindings, Relaxed);
        self.work_statuses_synced.store(work_statuses, Relaxed);
    }

    /// SIGTERM arrived: not ready from now on.
    pub fn set_terminating(&self) {
        self.terminating.store(true, Relaxed);
    }

    /// Liveness follows this lease task from now on.
    pub fn watch_lease(&self, lease: Arc<LeaseLiveness>) {
        let _ = self.lease.set(lease);
    }

    pub fn readiness(&self) -> Verdict {
        let mut failing = Vec::new();
        if self.terminating.load(Relaxed) {
            failing.push("terminating: SIGTERM received".to_string());
        }
        if !self.connected.load(Relaxed) {
            failing.push("API servers not reached or CRDs not checked yet".to_string());
        }
        let (b, w) = (
            self.bindings_synced.load(Relaxed),
            self.work_statuses_synced.load(Relaxed),
        );
        if !(b && w) {
            failing.push(format!(
                "watches not synced (Bindings: {}, WorkStatuses: {})",
                yes_no(b),
                yes_no(w)
            ));
        }
        verdict(failing)
    }

    pub fn liveness(&self) -> Verdict {
        let failing = match self.lease.get() {
            Some(lease) => lease.failing().into_iter().collect(),
            None => Vec::new(),
        };
        verdict(failing)
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn verdict(failing: Vec<String>) -> Verdict {
    if failing.is_empty() {
        Verdict {
            ok: true,
            body: "ok\n".into(),
        }
    } else {
        Verdict {
            ok: false,
            body: failing.iter().map(|f| format!("{f}\n")).collect(),
        }
    }
}

/// What the lease task shows of itself: a heartbeat at each step, and while
/// it leads, until when it may (its renew deadline).
#[derive(Debug)]
pub struct LeaseLiveness {
    start: Instant,
    /// A heartbeat older than this means the task is stuck.
    stale_after: Duration,
    heartbeat_ms: AtomicU64,
    /// 0 while not leading.
    leading_until_ms: AtomicU64,
    ended: AtomicBool,
}

impl LeaseLiveness {
    pub fn new(stale_after: Duration) -> Arc<Self> {
        Arc::new(Self {
            start: Instant::now(),
            stale_after,
            heartbeat_ms: AtomicU64::new(0),
            leading_until_ms: AtomicU64::new(0),
            ended: AtomicBool::new(false),
        })
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    pub fn beat(&self) {
        self.heartbeat_ms.store(self.now_ms(), Relaxed);
    }

    /// Leading until `until`; `None`: not leading.
    pub fn set_leading_until(&self, until: Option<Instant>) {
        let ms = until.map_or(0, |t| {
            (t.saturating_duration_since(self.start).as_millis() as u64).max(1)
        });
        self.leading_until_ms.store(ms, Relaxed);
    }

    /// The task ended (returned, or unwound from a panic).
    pub fn set_ended(&self) {
        self.ended.store(true, Relaxed);
    }

    /// Why the lease task is not healthy, if it is not.
    pub fn failing(&self) -> Option<String> {
        let now = self.now_ms();
        if self.ended.load(Relaxed) {
            return Some("the lease task ended".into());
        }
        let beat = self.heartbeat_ms.load(Relaxed);
        if now.saturating_sub(beat) > self.stale_after.as_millis() as u64 {
            return Some(format!(
                "the lease task is stuck: no heartbeat for {} ms",
                now - beat
            ));
        }
        let until = self.leading_until_ms.load(Relaxed);
        if until != 0 && now > until {
            return Some(format!(
                "the leader is {} ms past its renew deadline",
                now - until
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_names_each_failing_check_and_terminating_wins() {
        let h = Health::default();
        let v = h.readiness();
        assert!(!v.ok);
        assert!(v.body.contains("not reached"), "{}", v.body);
        assert!(
            v.body
                .contains("watches not synced (Bindings: no, WorkStatuses: no)"),
            "{}",
            v.body
        );
        h.set_connected();
        h.set_synced(true, true);
        assert_eq!(h.readiness().body, "ok\n");
        h.set_terminating();
        let v = h.readiness();
        assert!(!v.ok && v.body.contains("SIGTERM"), "{}", v.body);
        assert!(h.liveness().ok, "liveness does not depend on readiness");
    }

    /// A lease task that started `ago`, with no heartbeat since.
    fn started(ago: Duration, stale_after: Duration) -> Arc<LeaseLiveness> {
        Arc::new(LeaseLiveness {
            start: Instant::now() - ago,
            stale_after,
            heartbeat_ms: AtomicU64::new(0),
            leading_until_ms: AtomicU64::new(0),
            ended: AtomicBool::new(false),
        })
    }

    #[test]
    fn liveness_fails_when_the_lease_task_ends_stalls_or_passes_its_deadline() {
        let h = Health::default();
        let lease = started(Duration::from_secs(10), Duration::from_secs(60));
        h.watch_lease(lease.clone());
        lease.beat();
        assert!(h.liveness().ok);
        lease.set_leading_until(Some(Instant::now() + Duration::from_secs(60)));
        assert!(h.liveness().ok);
        lease.set_leading_until(Some(Instant::now() - Duration::from_secs(5)));
        let v = h.liveness();
        assert!(!v.ok && v.body.contains("renew deadline"), "{}", v.body);
        lease.set_leading_until(None);
        assert!(h.liveness().ok);
        lease.set_ended();
        assert!(h.liveness().body.contains("ended"));
        let stale = started(Duration::from_secs(10), Duration::from_secs(1));
        assert!(stale.failing().unwrap().contains("stuck"));
    }
}
