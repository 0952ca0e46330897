//! controller-runtime's `controller_runtime_*` and client-go's `workqueue_*`
//! metrics for every reconciler of the process. Each metric is one family;
//! each reconciler is one value of its `controller` label (its queue's `name`
//! label), so the status reconciler and the queue-fed writers of
//! StatusCollector statuses and Binding conditions are counted side by side
//! under the names operators' dashboards know, and each metric has one
//! `TYPE` line however many reconcilers there are.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Name = [(&'static str, String); 1];
type NameAndResult = [(&'static str, String); 2];
type Histograms = Family<Name, Histogram, fn() -> Histogram>;

/// 1 ms .. ~65 s, as a reconcile is a few API calls.
fn reconcile_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// client-go's workqueue buckets: 1 µs .. 10 s, by tens.
fn queue_buckets() -> Histogram {
    Histogram::new(exponential_buckets(1e-6, 10.0, 8))
}

/// The families of the process, shared by its reconcilers. Cloning shares
/// the values.
#[derive(Clone)]
pub struct Families {
    reconcile_results: Family<NameAndResult, Counter>,
    reconcile_errors: Family<Name, Counter>,
    reconcile_time: Histograms,
    max_concurrent_reconciles: Family<Name, Gauge>,
    active_workers: Family<Name, Gauge>,
    depth: Family<Name, Gauge>,
    adds: Family<Name, Counter>,
    retries: Family<Name, Counter>,
    queue_duration: Histograms,
    work_duration: Histograms,
}

impl Default for Families {
    fn default() -> Self {
        Self {
            reconcile_results: Family::default(),
            reconcile_errors: Family::default(),
            reconcile_time: Family::new_with_constructor(reconcile_buckets),
            max_concurrent_reconciles: Family::default(),
            active_workers: Family::default(),
            depth: Family::default(),
            adds: Family::default(),
            retries: Family::default(),
            queue_duration: Family::new_with_constructor(queue_buckets),
            work_duration: Family::new_with_constructor(queue_buckets),
        }
    }
}

impl Families {
    /// The metrics of the reconciler `name` with `workers` workers. Every
    /// series exists from here on at 0, as controller-runtime's do, so that
    /// a `rate()` over them works before the first reconcile.
    pub fn reconciler(&self, name: &str, workers: usize) -> ReconcilerMetrics {
        let label: Name = [("controller", name.to_string())];
        let result = |result: &str| {
            self.reconcile_results
                .get_or_create(&[
                    ("controller", name.to_string()),
                    ("result", result.to_string()),
                ])
                .clone()
        };
        let queue: Name = [("name", name.to_string())];
        self.max_concurrent_reconciles
            .get_or_create(&label)
            .set(i64::try_from(workers).unwrap_or(i64::MAX));
        ReconcilerMetrics {
            success: result("success"),
            error: result("error"),
            errors: self.reconcile_errors.get_or_create(&label).clone(),
            time: self.reconcile_time.get_or_create(&label).clone(),
            active_workers: self.active_workers.get_or_create(&label).clone(),
            queue: QueueMetrics {
                depth: self.depth.get_or_create(&queue).clone(),
                adds: self.adds.get_or_create(&queue).clone(),
                retries: self.retries.get_or_create(&queue).clone(),
                queue_duration: self.queue_duration.get_or_create(&queue).clone(),
                work_duration: self.work_duration.get_or_create(&queue).clone(),
            },
        }
    }

    /// Adds every family to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "controller_runtime_reconcile",
            "Total number of reconciliations per controller, by result",
            self.reconcile_results.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_errors",
            "Total number of reconciliation errors per controller",
            self.reconcile_errors.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            self.reconcile_time.clone(),
        );
        registry.register(
            "controller_runtime_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller",
            self.max_concurrent_reconciles.clone(),
        );
        registry.register(
            "controller_runtime_active_workers",
            "Number of currently used workers per controller",
            self.active_workers.clone(),
        );
        registry.register(
            "workqueue_depth",
            "Current depth of workqueue",
            self.depth.clone(),
        );
        registry.register(
            "workqueue_adds",
            "Total number of adds handled by workqueue",
            self.adds.clone(),
        );
        registry.register(
            "workqueue_retries",
            "Total number of retries handled by workqueue",
            self.retries.clone(),
        );
        registry.register(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested",
            self.queue_duration.clone(),
        );
        registry.register(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes",
            self.work_duration.clone(),
        );
    }
}

/// One reconciler's metrics. Cloning shares the values.
#[derive(Clone, Debug)]
pub struct ReconcilerMetrics {
    success: Counter,
    error: Counter,
    errors: Counter,
    time: Histogram,
    active_workers: Gauge,
    /// Its queue's (`workqueue_*{name}`).
    pub queue: QueueMetrics,
}

impl ReconcilerMetrics {
    /// Reconciles finished, whatever their result.
    pub fn reconciles(&self) -> u64 {
        self.success.get() + self.error.get()
    }

    /// Reconciles that failed.
    pub fn reconcile_errors(&self) -> u64 {
        self.errors.get()
    }

    /// Reconciles running now.
    pub fn active_workers(&self) -> i64 {
        self.active_workers.get()
    }

    /// The failures counter (also `status_router_reconcile_errors` for the
    /// status reconciler).
    pub(super) fn errors_counter(&self) -> &Counter {
        &self.errors
    }

    /// A worker took a key.
    pub fn started(&self) {
        self.active_workers.inc();
    }

    /// A worker finished a key, after `elapsed`.
    pub fn finished(&self, ok: bool, elapsed: Duration) {
        self.active_workers.dec();
        self.time.observe(elapsed.as_secs_f64());
        if ok {
            self.success.inc();
        } else {
            self.errors.inc();
            self.error.inc();
        }
    }
}

/// client-go's workqueue metrics, for one queue. Cloning shares the values;
/// [`Default`] gives a queue metrics of its own, registered nowhere.
#[derive(Clone, Debug)]
pub struct QueueMetrics {
    pub(in crate::runtime) depth: Gauge,
    pub(in crate::runtime) adds: Counter,
    pub(in crate::runtime) retries: Counter,
    pub(in crate::runtime) queue_duration: Histogram,
    pub(in crate::runtime) work_duration: Histogram,
}

impl Default for QueueMetrics {
    fn default() -> Self {
        Families::default().reconciler("", 1).queue
    }
}

impl QueueMetrics {
    /// Keys waiting now.
    pub fn depth(&self) -> i64 {
        self.depth.get()
    }

    /// Keys added (not counting an add of a key already waiting).
    pub fn adds(&self) -> u64 {
        self.adds.get()
    }

    /// Keys put back after a failure.
    pub fn retries(&self) -> u64 {
        self.retries.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reconciler_is_one_label_value_under_one_type_line() {
        let families = Families::default();
        let status = families.reconciler("status-router", 4);
        let conditions = families.reconciler("binding-condition", 1);
        status.started();
        status.finished(true, Duration::from_millis(2));
        conditions.started();
        conditions.finished(false, Duration::from_millis(2));
        conditions.queue.adds.inc();
        let mut registry = Registry::default();
        families.register(&mut registry);
        let text = crate::runtime::metrics::render(&registry);
        for line in [
            "controller_runtime_reconcile_total{controller=\"status-router\",result=\"success\"} 1\n",
            "controller_runtime_reconcile_total{controller=\"binding-condition\",result=\"error\"} 1\n",
            "controller_runtime_reconcile_errors_total{controller=\"binding-condition\"} 1\n",
            "controller_runtime_reconcile_errors_total{controller=\"status-router\"} 0\n",
            "controller_runtime_max_concurrent_reconciles{controller=\"status-router\"} 4\n",
            "controller_runtime_max_concurrent_reconciles{controller=\"binding-condition\"} 1\n",
            "workqueue_adds_total{name=\"binding-condition\"} 1\n",
            "workqueue_adds_total{name=\"status-router\"} 0\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert_eq!(
            text.matches("# TYPE controller_runtime_reconcile_total counter")
                .count(),
            1,
            "one family, not one per reconciler:\n{text}"
        );
        assert_eq!((status.reconciles(), conditions.reconcile_errors()), (1, 1));
    }
}
