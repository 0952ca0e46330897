//! One reconcile contract for every writer, in kube-runtime's spirit: a
//! reconcile of one key returns a result, and one error policy
//! ([`requeue`]) decides whether and when the key comes back. A failure the
//! API server may get over by itself (down, restarting, overloaded, too slow)
//! comes back soon; any other after a per-key backoff that grows, since only
//! a change of inputs, policy or permissions can mend it.

use std::fmt::Display;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::api::CallError;
use super::metrics::ReconcilerMetrics;
use super::queue::WorkQueue;

/// A reconcile error, as the error policy sees it.
pub trait ReconcileError: Display {
    /// Whether the failure may go away by itself (retried soon).
    fn is_transient(&self) -> bool;
}

impl ReconcileError for CallError {
    fn is_transient(&self) -> bool {
        CallError::is_transient(self)
    }
}

/// The error policy: a success marks `key` done (its backoff resets); a
/// failure puts it back after the delay it returns.
pub fn requeue<K, E>(queue: &Arc<WorkQueue<K>>, key: &K, result: &Result<(), E>) -> Option<Duration>
where
    K: Clone + Eq + Hash + Send + 'static,
    E: ReconcileError,
{
    match result {
        Ok(()) => {
            queue.done(key);
            None
        }
        Err(e) if e.is_transient() => Some(queue.retry_transient(key)),
        Err(_) => Some(queue.retry(key)),
    }
}

/// A queue-fed reconciler: its queue of keys and its metrics (its own
/// `controller` label).
pub struct Reconciler<K> {
    pub queue: Arc<WorkQueue<K>>,
    pub metrics: ReconcilerMetrics,
}

impl<K: Clone + Eq + Hash + Send + 'static> Reconciler<K> {
    /// A reconciler whose queue counts in `metrics`.
    pub fn new(metrics: ReconcilerMetrics) -> Self {
        Self {
            queue: WorkQueue::with_metrics(metrics.queue.clone()),
            metrics,
        }
    }

    /// Runs one reconcile of `key`, counts it, and applies the error
    /// policy; returns its result and when the key comes back.
    pub async fn reconcile<E: ReconcileError>(
        &self,
        key: &K,
        reconcile: impl Future<Output = Result<(), E>>,
    ) -> (Result<(), E>, Option<Duration>) {
        self.metrics.started();
        let start = Instant::now();
        let result = reconcile.await;
        self.metrics.finished(result.is_ok(), start.elapsed());
        let retry_in = requeue(&self.queue, key, &result);
        (result, retry_in)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::queue::TRANSIENT_BACKOFF_MAX;

    /// The delays of ten failures in a row of one key.
    async fn delays(error: impl Fn() -> CallError) -> Vec<Duration> {
        let queue = WorkQueue::new();
        queue.add("k");
        let mut out = Vec::new();
        for _ in 0..10 {
            let key = queue.next().await.expect("the key comes back");
            out.extend(requeue(&queue, &key, &Err(error())));
        }
        out
    }

    #[tokio::test(start_paused = true)]
    async fn success_is_done_and_a_transient_failure_comes_back_sooner() {
        let queue = WorkQueue::new();
        queue.add("k");
        let key = queue.next().await.unwrap();
        assert_eq!(requeue::<_, CallError>(&queue, &key, &Ok(())), None);
        assert!(queue.is_empty());

        let transient = delays(|| CallError::Timeout).await;
        let refused = || {
            CallError::Api(kube::Error::Api(Box::new(kube::core::Status {
                code: 422,
                ..Default::default()
            })))
        };
        let permanent = delays(refused).await;
        assert!(
            transient.iter().all(|d| *d <= TRANSIENT_BACKOFF_MAX),
            "{transient:?}"
        );
        assert!(permanent.windows(2).all(|w| w[0] <= w[1]), "{permanent:?}");
        assert!(permanent[9] > TRANSIENT_BACKOFF_MAX, "{permanent:?}");
    }
}
