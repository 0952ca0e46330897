//! Counters of what the controller did, readable in-process (tests, logs)
//! and in Prometheus' text format on `--metrics-addr`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The controller's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    pub reconciles: AtomicU64,
    pub reconcile_errors: AtomicU64,
    pub policy_errors: AtomicU64,
    pub aggregate_refusals: AtomicU64,
    pub status_writes: AtomicU64,
    pub label_writes: AtomicU64,
}

impl Metrics {
    pub(crate) fn count_write(&self, status: bool) {
        if status {
            self.status_writes.fetch_add(1, Relaxed);
        } else {
            self.label_writes.fetch_add(1, Relaxed);
        }
    }

    /// The counters in Prometheus' text exposition format.
    pub fn render(&self) -> String {
        let counters = [
            (
                "reconciles",
                "Reconciles of workload objects",
                &self.reconciles,
            ),
            (
                "reconcile_errors",
                "Reconciles that failed and were retried",
                &self.reconcile_errors,
            ),
            (
                "policy_errors",
                "Policy calls that failed (trap, deadline, memory, bad output)",
                &self.policy_errors,
            ),
            (
                "aggregate_refusals",
                "Aggregations the policy refused",
                &self.aggregate_refusals,
            ),
            (
                "status_writes",
                "Status writes to the WDS",
                &self.status_writes,
            ),
            (
                "label_writes",
                "Label writes to the WDS",
                &self.label_writes,
            ),
        ];
        let mut out = String::new();
        for (name, help, value) in counters {
            out.push_str(&format!(
                "# HELP status_router_{name}_total {help}.\n# TYPE status_router_{name}_total counter\nstatus_router_{name}_total {}\n",
                value.load(Relaxed)
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_counter() {
        let m = Metrics::default();
        m.count_write(true);
        m.count_write(false);
        m.count_write(false);
        let text = m.render();
        assert!(
            text.contains("status_router_status_writes_total 1\n"),
            "{text}"
        );
        assert!(
            text.contains("status_router_label_writes_total 2\n"),
            "{text}"
        );
        assert_eq!(text.matches("# TYPE").count(), 6);
    }
}
