//! The workqueue, after client-go's: a key is queued at most once, a key is
//! reconciled by one worker at a time (a key added while in flight runs again
//! once done), and a failed key comes back after a per-key exponential backoff.
//! It keeps client-go's workqueue metrics ([`QueueMetrics`]): depth, adds,
//! retries, the time a key waits and the time it is worked on.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

pub use super::metrics::QueueMetrics;

/// First retry delay after a failure; doubles with each further failure.
pub const BACKOFF_BASE: Duration = Duration::from_millis(10);
/// Longest retry delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Longest retry delay after a transient failure (an API server or etcd that
/// is down or does not answer in time): the key must be written within about
/// this long of the server's return, not after a backoff that grew for as
/// long as the outage lasted (a 10 s outage would otherwise leave keys
/// waiting up to 10 s more).
pub const TRANSIENT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// A deduplicating work queue with per-key backoff.
pub struct WorkQueue<K> {
    state: Mutex<State<K>>,
    ready: Notify,
    metrics: QueueMetrics,
}

struct State<K> {
    queue: VecDeque<K>,
    dirty: HashSet<K>,
    processing: HashSet<K>,
    failures: HashMap<K, u32>,
    /// Since when each queued key waits, and since when each key in flight runs.
    queued_at: HashMap<K, Instant>,
    started_at: HashMap<K, Instant>,
    shut_down: bool,
}

impl<K: Clone + Eq + Hash> State<K> {
    /// Puts a key at the end of the queue; it waits from now.
    fn push(&mut self, key: K, metrics: &QueueMetrics) {
        self.queued_at.insert(key.clone(), Instant::now());
        self.queue.push_back(key);
        metrics.depth.set(self.queue.len() as i64);
    }
}

impl<K: Clone + Eq + Hash + Send + 'static> WorkQueue<K> {
    pub fn new() -> Arc<Self> {
        Self::with_metrics(QueueMetrics::default())
    }

    /// A queue that keeps `metrics` (shared with whoever holds a clone).
    pub fn with_metrics(metrics: QueueMetrics) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                dirty: HashSet::new(),
                processing: HashSet::new(),
                failures: HashMap::new(),
                queued_at: HashMap::new(),
                started_at: HashMap::new(),
                shut_down: false,
            }),
            ready: Notify::new(),
            metrics,
        })
    }

    /// Queues a key unless it is queued already.
    pub fn add(&self, key: K) {
        let mut s = self.state.lock().expect("queue lock");
        if s.shut_down || !s.dirty.insert(key.clone()) {
            return;
        }
        self.metrics.adds.inc();
        if !s.processing.contains(&key) {
            s.push(key, &self.metrics);
            drop(s);
            self.ready.notify_one();
        }
    }

    /// Waits for the next key; `None` once the queue is shut down.
    pub async fn next(&self) -> Option<K> {
        loop {
            let notified = self.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut s = self.state.lock().expect("queue lock");
                if s.shut_down {
                    return None;
                }
                if let Some(key) = s.queue.pop_front() {
                    self.metrics.depth.set(s.queue.len() as i64);
                    let now = Instant::now();
                    if let Some(since) = s.queued_at.remove(&key) {
                        self.metrics
                            .queue_duration
                            .observe(now.duration_since(since).as_secs_f64());
                    }
                    s.started_at.insert(key.clone(), now);
                    s.dirty.remove(&key);
                    s.processing.insert(key.clone());
                    let more = !s.queue.is_empty();
                    drop(s);
                    if more {
                        // Pass the baton: a notify_one may have been consumed by us.
                        self.ready.notify_one();
                    }
                    return Some(key);
                }
            }
            notified.await;
        }
    }

    /// Marks a key's reconcile finished, successfully: its backoff resets.
    pub fn done(&self, key: &K) {
        self.finish(key, true);
    }

    /// Marks a key's reconcile failed: it comes back after its backoff.
    /// Returns the delay.
    pub fn retry(self: &Arc<Self>, key: &K) -> Duration {
        self.retry_capped(key, BACKOFF_MAX)
    }

    /// [`WorkQueue::retry`] after a transient failure: the delay is at most
    /// [`TRANSIENT_BACKOFF_MAX`].
    pub fn retry_transient(self: &Arc<Self>, key: &K) -> Duration {
        self.retry_capped(key, TRANSIENT_BACKOFF_MAX)
    }

    fn retry_capped(self: &Arc<Self>, key: &K, cap: Duration) -> Duration {
        let failures = {
            let mut s = self.state.lock().expect("queue lock");
            let n = s.failures.entry(key.clone()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        };
        self.metrics.retries.inc();
        self.finish(key, false);
        let delay = backoff(failures).min(cap);
        let queue = Arc::clone(self);
        let key = key.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            queue.add(key);
        });
        delay
    }

    fn finish(&self, key: &K, success: bool) {
        let mut s = self.state.lock().expect("queue lock");
        s.processing.remove(key);
        if let Some(since) = s.started_at.remove(key) {
            self.metrics
                .work_duration
                .observe(since.elapsed().as_secs_f64());
        }
        if success {
            s.failures.remove(key);
        }
        if s.dirty.contains(key) && !s.shut_down {
            s.push(key.clone(), &self.metrics);
            drop(s);
            self.ready.notify_one();
        }
    }

    /// Stops handing out keys; waiting workers get `None`.
    pub fn shut_down(&self) {
        self.state.lock().expect("queue lock").shut_down = true;
        self.ready.notify_waiters();
    }

    /// Keys waiting (not counting those in flight).
    pub fn len(&self) -> usize {
        self.state.lock().expect("queue lock").queue.len()
    }

    /// Whether no key is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The delay before retry number `failures` (1-based).
pub fn backoff(failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(20);
    BACKOFF_BASE.saturating_mul(factor).min(BACKOFF_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_is_queued_once() {
        let q = WorkQueue::new();
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(q.len(), 2);
        assert_eq!(q.next().await, Some("a"));
        assert_eq!(q.next().await, Some("b"));
        assert!(q.is_empty());
    }

    #[tokio::test]
    async fn a_key_added_in_flight_runs_again_after_done_not_concurrently() {
        let q = WorkQueue::new();
        q.add("a");
        let key = q.next().await.unwrap();
        q.add("a");
        assert!(q.is_empty(), "not handed out while in flight");
        q.done(&key);
        assert_eq!(q.next().await, Some("a"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_key_comes_back_after_its_backoff() {
        let q = WorkQueue::new();
        q.add("a");
        let key = q.next().await.unwrap();
        assert_eq!(q.retry(&key), BACKOFF_BASE);
        assert!(q.is_empty());
        assert_eq!(q.next().await, Some("a"));
        assert_eq!(q.retry(&"a"), BACKOFF_BASE * 2);
        assert_eq!(q.next().await, Some("a"));
        q.done(&"a");
        q.add("a");
        assert_eq!(q.next().await, Some("a"));
        assert_eq!(q.retry(&"a"), BACKOFF_BASE, "success reset the backoff");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff(1), BACKOFF_BASE);
        assert_eq!(backoff(3), BACKOFF_BASE * 4);
        assert_eq!(backoff(40), BACKOFF_MAX);
    }

    #[tokio::test(start_paused = true)]
    async fn the_metrics_follow_adds_waits_work_and_retries() {
        let families = crate::runtime::metrics::Families::default();
        let metrics = families.reconciler("q", 1).queue;
        let q = WorkQueue::with_metrics(metrics.clone());
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!((metrics.adds(), metrics.depth()), (2, 2));
        let a = q.next().await.unwrap();
        assert_eq!(metrics.depth(), 1);
        let count = |what: &str| {
            let mut registry = prometheus_client::registry::Registry::default();
            families.register(&mut registry);
            let text = crate::runtime::metrics::render(&registry);
            let line = format!("workqueue_{what}_duration_seconds_count{{name=\"q\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(line.as_str()))
                .map(|v| v.trim().to_string())
                .unwrap_or_else(|| panic!("no {line} in {text}"))
        };
        assert_eq!(count("queue"), "1");
        q.retry(&a);
        assert_eq!(metrics.retries(), 1);
        assert_eq!(count("work"), "1");
        q.next().await.unwrap();
        q.next().await.unwrap();
        assert_eq!(metrics.adds(), 3, "the retry re-added a");
        assert_eq!(metrics.depth(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_transient_failure_waits_at_most_the_transient_cap() {
        let q = WorkQueue::new();
        q.add("a");
        let mut last = Duration::ZERO;
        for _ in 0..30 {
            let key = q.next().await.unwrap();
            last = q.retry_transient(&key);
            assert!(last <= TRANSIENT_BACKOFF_MAX);
        }
        assert_eq!(last, TRANSIENT_BACKOFF_MAX);
        let key = q.next().await.unwrap();
        assert!(
            q.retry(&key) > TRANSIENT_BACKOFF_MAX,
            "a refusal keeps the long backoff"
        );
    }

    #[tokio::test]
    async fn shut_down_wakes_waiting_workers() {
        let q: Arc<WorkQueue<&str>> = WorkQueue::new();
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.next().await }
        });
        tokio::task::yield_now().await;
        q.shut_down();
        assert_eq!(waiter.await.unwrap(), None);
    }
}
