//! Restarting a watch: how long a failed watch waits before it retries
//! ([`WatchBackoff`]), and what a relist shows that the watch missed
//! ([`Relist`]). Every watch of the process uses both, through
//! `kube::runtime::watcher`.
//!
//! A failed watch retries after [`WatchBackoff`], not kube's default backoff:
//! that one grows to 30 s and only resets after two quiet minutes, so after a
//! few API server or etcd restarts in a row a watch came back up to 12 s
//! after its server did (measured in RELIABILITY.md). A handful of watches
//! retrying once a second against a server that is down costs it nothing.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use kube::runtime::utils::Backoff;
use kube::runtime::watcher::{self, Event};

/// First retry delay of a failed watch.
pub const WATCH_BACKOFF_MIN: Duration = Duration::from_millis(50);
/// Longest retry delay of a failed watch: what a watch may lag behind its
/// API server's return.
pub const WATCH_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The retry delays of a failed watch: 50 ms doubling up to 1 s, reset by
/// the first event after a success. Not kube's `StreamBackoff`: that one
/// resets on every item that is not an error, and a watcher that relists
/// emits `Init` before each attempt, so a list that keeps failing (a server
/// that is down) would be retried every 50 ms.
#[derive(Clone, Debug)]
pub struct WatchBackoff {
    next: Duration,
}

impl Default for WatchBackoff {
    fn default() -> Self {
        Self {
            next: WATCH_BACKOFF_MIN,
        }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let delay = self.next;
        self.next = (delay * 2).min(WATCH_BACKOFF_MAX);
        Some(delay)
    }
}

impl WatchBackoff {
    /// Paces a watch loop: waits the next delay after an error; an event
    /// other than the `Init` that starts each list attempt resets the delay.
    /// A 410 Gone is no failure: the server answers, and the watcher relists
    /// at once (after an outage the backoff has grown to its maximum, and
    /// waiting it out delayed every change made since by that much).
    pub async fn pace<K>(&mut self, event: &Result<Event<K>, watcher::Error>) {
        match event {
            Err(e) if is_gone(e) => self.reset(),
            Err(_) => tokio::time::sleep(self.next().unwrap_or(WATCH_BACKOFF_MAX)).await,
            Ok(Event::Init) => {}
            Ok(_) => self.reset(),
        }
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = WATCH_BACKOFF_MIN;
    }
}

/// A watch's resourceVersion is older than the server keeps (410 Gone):
/// the watcher relists.
pub fn is_gone(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::WatchError(status) => status.code == 410,
        watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => status.code == 410,
        _ => false,
    }
}

/// What a watch saw while it (re)listed: whatever the index or the cache
/// still knows that the list did not show was deleted while the watch was down.
pub struct Relist<K> {
    seen: Option<HashSet<K>>,
}

impl<K> Default for Relist<K> {
    fn default() -> Self {
        Self { seen: None }
    }
}

impl<K: Clone + Eq + std::hash::Hash> Relist<K> {
    /// A list begins (`Init`).
    pub fn start(&mut self) {
        self.seen = Some(HashSet::new());
    }

    /// An object arrived; counts only during a list.
    pub fn saw(&mut self, key: &K) {
        if let Some(seen) = self.seen.as_mut() {
            seen.insert(key.clone());
        }
    }

    /// The list is done (`InitDone`): what it showed.
    pub fn take_seen(&mut self) -> HashSet<K> {
        self.seen.take().unwrap_or_default()
    }

    /// The list is done (`InitDone`): those of `known` it did not show.
    pub fn finish(&mut self, known: Vec<K>) -> Vec<K> {
        let seen = self.take_seen();
        known.into_iter().filter(|k| !seen.contains(k)).collect()
    }

    /// The list is done (`InitDone`): removes from `map` what it did not
    /// show, and returns those keys.
    pub fn prune<V>(&mut self, map: &mut HashMap<K, V>) -> Vec<K> {
        let gone = self.finish(map.keys().cloned().collect());
        for key in &gone {
            map.remove(key);
        }
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watch_retries_within_a_second_and_a_success_resets_its_backoff() {
        let mut backoff = WatchBackoff::default();
        let delays: Vec<_> = backoff.by_ref().take(8).collect();
        assert_eq!(delays[0], WATCH_BACKOFF_MIN);
        assert_eq!(delays[1], WATCH_BACKOFF_MIN * 2);
        assert_eq!(*delays.last().unwrap(), WATCH_BACKOFF_MAX);
        assert!(delays.iter().all(|d| *d <= WATCH_BACKOFF_MAX));
        backoff.reset();
        assert_eq!(backoff.next(), Some(WATCH_BACKOFF_MIN));
    }

    #[tokio::test(start_paused = true)]
    async fn a_410_gone_is_relisted_at_once_and_resets_the_backoff() {
        let mut backoff = WatchBackoff::default();
        for _ in 0..6 {
            backoff.next();
        }
        let gone = kube::core::Status::failure("too old resource version: 1 (2)", "Expired")
            .with_code(410)
            .boxed();
        let event: Result<Event<()>, _> = Err(watcher::Error::WatchError(gone));
        assert!(is_gone(event.as_ref().unwrap_err()));
        let before = tokio::time::Instant::now();
        backoff.pace(&event).await;
        assert_eq!(
            before.elapsed(),
            Duration::ZERO,
            "no wait before the relist"
        );
        assert_eq!(backoff.next(), Some(WATCH_BACKOFF_MIN));

        let refused: Result<Event<()>, _> = Err(watcher::Error::NoResourceVersion);
        assert!(!is_gone(refused.as_ref().unwrap_err()));
        backoff.pace(&refused).await;
        assert!(before.elapsed() > Duration::ZERO, "any other failure waits");
    }

    #[test]
    fn what_a_relist_did_not_show_is_gone_and_events_outside_a_list_do_not_count() {
        let mut relist = Relist::default();
        relist.saw(&"before");
        relist.start();
        relist.saw(&"a");
        relist.saw(&"b");
        assert_eq!(
            relist.finish(vec!["a", "b", "c", "before"]),
            ["c", "before"]
        );
        assert!(
            relist.take_seen().is_empty(),
            "a finished list forgets what it saw"
        );
    }

    #[test]
    fn a_relist_prunes_what_it_did_not_show_from_a_map() {
        let mut relist = Relist::default();
        let mut known: std::collections::HashMap<&str, u32> =
            [("a", 1), ("gone", 2)].into_iter().collect();
        relist.start();
        relist.saw(&"a");
        assert_eq!(relist.prune(&mut known), ["gone"]);
        assert_eq!(known.into_iter().collect::<Vec<_>>(), [("a", 1)]);
    }
}
