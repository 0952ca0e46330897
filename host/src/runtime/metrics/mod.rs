//! What the controller did, as Prometheus metrics (through `prometheus-client`)
//! under the names Kubernetes operators' dashboards already know
//! (controller-runtime's `controller_runtime_*`, client-go's `workqueue_*`),
//! plus the `status_router_*` counters of this controller. The same values are
//! readable in-process ([`Metrics::status_writes`] and its siblings) for tests
//! and benchmarks.
//!
//! [`Metrics::register`] adds every metric to a [`Registry`]: the binary
//! builds one registry for the controller, the workqueues, the policy and
//! the leader election, and serves it on `/metrics`. Each reconciler of the
//! controller (the status reconciler, and the writers of StatusCollector
//! statuses and Binding conditions) has its own `controller` label value
//! ([`reconciler`]).

mod reconciler;

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub use self::reconciler::{Families, QueueMetrics, ReconcilerMetrics};

/// The `controller` label of the status reconciler's metrics, and the
/// `name` label of its workqueue's.
pub const CONTROLLER_NAME: &str = "status-router";

type ResultLabel = [(&'static str, &'static str); 1];

/// Which policy call a duration is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyCall {
    Decide,
    Aggregate,
}

impl PolicyCall {
    fn label(self) -> ResultLabel {
        [(
            "call",
            match self {
                Self::Decide => "decide",
                Self::Aggregate => "aggregate",
            },
        )]
    }
}

/// The controller's metrics. Cloning shares the values.
#[derive(Clone)]
pub struct Metrics {
    reconciles: Counter,
    policy_errors: Counter,
    aggregate_refusals: Counter,
    status_writes: Counter,
    label_writes: Counter,
    policy_calls: Family<ResultLabel, Histogram>,
    families: Families,
    /// The status reconciler's (`controller="status-router"`), with its
    /// workqueue's.
    pub status: ReconcilerMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        // 1 µs .. ~16 ms: a call costs about a microsecond; the deadline is 10 ms.
        let policy_calls = Family::<ResultLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(1e-6, 2.0, 15))
        });
        for call in [PolicyCall::Decide, PolicyCall::Aggregate] {
            drop(policy_calls.get_or_create(&call.label()));
        }
        let families = Families::default();
        Self {
            reconciles: Counter::default(),
            policy_errors: Counter::default(),
            aggregate_refusals: Counter::default(),
            status_writes: Counter::default(),
            label_writes: Counter::default(),
            policy_calls,
            status: families.reconciler(CONTROLLER_NAME, 1),
            families,
        }
    }
}

impl Metrics {
    /// Reconciles started.
    pub fn reconciles(&self) -> u64 {
        self.reconciles.get()
    }

    /// Reconciles that failed and were retried.
    pub fn reconcile_errors(&self) -> u64 {
        self.status.reconcile_errors()
    }

    /// Policy calls that failed (trap, deadline, memory, bad output).
    pub fn policy_errors(&self) -> u64 {
        self.policy_errors.get()
    }

    /// Aggregations the policy refused.
    pub fn aggregate_refusals(&self) -> u64 {
        self.aggregate_refusals.get()
    }

    /// Status writes to the WDS.
    pub fn status_writes(&self) -> u64 {
        self.status_writes.get()
    }

    /// Label writes to the WDS.
    pub fn label_writes(&self) -> u64 {
        self.label_writes.get()
    }

    /// Workers currently in a reconcile.
    pub fn active_workers(&self) -> i64 {
        self.status.active_workers()
    }

    /// The metrics of another reconciler of this controller, counted under
    /// the `controller` label `name`.
    pub fn reconciler(&self, name: &str, workers: usize) -> ReconcilerMetrics {
        self.families.reconciler(name, workers)
    }

    pub(crate) fn count_write(&self, status: bool) {
        if status {
            self.status_writes.inc();
        } else {
            self.label_writes.inc();
        }
    }

    pub(crate) fn set_max_concurrent_reconciles(&self, workers: usize) {
        self.families.reconciler(CONTROLLER_NAME, workers);
    }

    /// A worker took an object.
    pub(crate) fn reconcile_started(&self) {
        self.reconciles.inc();
        self.status.started();
    }

    /// A worker finished an object, after `elapsed`.
    pub(crate) fn reconcile_finished(&self, ok: bool, elapsed: Duration) {
        self.status.finished(ok, elapsed);
    }

    pub(crate) fn count_policy_error(&self) {
        self.policy_errors.inc();
    }

    pub(crate) fn count_aggregate_refusal(&self) {
        self.aggregate_refusals.inc();
    }

    /// A policy call took `elapsed`.
    pub fn observe_policy_call(&self, call: PolicyCall, elapsed: Duration) {
        self.policy_calls
            .get_or_create(&call.label())
            .observe(elapsed.as_secs_f64());
    }

    /// Adds every metric to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        let ours = [
            (
                "status_router_reconciles",
                "Reconciles of workload objects",
                &self.reconciles,
            ),
            (
                "status_router_reconcile_errors",
                "Reconciles that failed and were retried",
                self.status.errors_counter(),
            ),
            (
                "status_router_policy_errors",
                "Policy calls that failed (trap, deadline, memory, bad output)",
                &self.policy_errors,
            ),
            (
                "status_router_aggregate_refusals",
                "Aggregations the policy refused",
                &self.aggregate_refusals,
            ),
            (
                "status_router_status_writes",
                "Status writes to the WDS",
                &self.status_writes,
            ),
            (
                "status_router_label_writes",
                "Label writes to the WDS",
                &self.label_writes,
            ),
        ];
        for (name, help, counter) in ours {
            registry.register(name, help, counter.clone());
        }
        registry.register(
            "status_router_policy_call_duration_seconds",
            "Time of one policy call, by call (decide, aggregate)",
            self.policy_calls.clone(),
        );
        self.families.register(registry);
    }

    /// Every metric in Prometheus' text format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut registry = Registry::default();
        self.register(&mut registry);
        render(&registry)
    }
}

/// `registry` in Prometheus' text format (version 0.0.4).
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, registry)
        .expect("writing to a String does not fail");
    out
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("reconciles", &self.reconciles())
            .field("reconcile_errors", &self.reconcile_errors())
            .field("policy_errors", &self.policy_errors())
            .field("aggregate_refusals", &self.aggregate_refusals())
            .field("status_writes", &self.status_writes())
            .field("label_writes", &self.label_writes())
            .field("active_workers", &self.active_workers())
            .field("queue_depth", &self.status.queue.depth())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_metric_with_its_labels() {
        let m = Metrics::default();
        m.count_write(true);
        m.count_write(false);
        m.count_write(false);
        m.set_max_concurrent_reconciles(4);
        m.reconcile_started();
        m.reconcile_finished(false, Duration::from_millis(3));
        m.observe_policy_call(PolicyCall::Decide, Duration::from_micros(2));
        let text = m.render();
        for line in [
            "status_router_status_writes_total 1\n",
            "status_router_label_writes_total 2\n",
            "status_router_reconcile_errors_total 1\n",
            "controller_runtime_reconcile_total{controller=\"status-router\",result=\"error\"} 1\n",
            "controller_runtime_reconcile_total{controller=\"status-router\",result=\"success\"} 0\n",
            "controller_runtime_reconcile_errors_total{controller=\"status-router\"} 1\n",
            "controller_runtime_reconcile_time_seconds_count{controller=\"status-router\"} 1\n",
            "controller_runtime_max_concurrent_reconciles{controller=\"status-router\"} 4\n",
            "controller_runtime_active_workers{controller=\"status-router\"} 0\n",
            "status_router_policy_call_duration_seconds_count{call=\"decide\"} 1\n",
            "workqueue_depth{name=\"status-router\"} 0\n",
            "workqueue_adds_total{name=\"status-router\"} 0\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert_eq!((m.status_writes(), m.label_writes()), (1, 2));
        assert_eq!((m.reconciles(), m.reconcile_errors()), (1, 1));
    }
}
