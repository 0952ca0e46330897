//! The watch on the WDS namespace that times every phase: what this process
//! sees is the end-to-end figure, whatever the controller believes it wrote.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use status_router::kubestellar::SINGLETON_STATUS_LABEL;
use tokio::sync::Notify;

use crate::STALL;
use crate::ctl::Ctl;
use crate::objects::index_of;

/// When each Deployment was first seen (by this process's watch) holding the
/// value the current phase looks for, with our label.
pub struct Tracker {
    n: usize,
    state: Mutex<TrackState>,
    progress: Notify,
}

struct TrackState {
    listed: bool,
    target: i64,
    wanted: std::ops::Range<usize>,
    seen: Vec<Option<Instant>>,
    count: usize,
}

impl Tracker {
    pub fn new(n: usize) -> Arc<Self> {
        Arc::new(Self {
            n,
            state: Mutex::new(TrackState {
                listed: false,
                target: i64::MIN,
                wanted: 0..0,
                seen: vec![None; n],
                count: 0,
            }),
            progress: Notify::new(),
        })
    }

    /// Looks for `availableReplicas == target` on the objects `wanted` from now on.
    pub fn arm(&self, target: i64, wanted: std::ops::Range<usize>) {
        let mut s = self.state.lock().unwrap();
        s.target = target;
        s.wanted = wanted;
        s.seen = vec![None; self.n];
        s.count = 0;
    }

    pub fn seen(&self) -> Vec<Option<Instant>> {
        self.state.lock().unwrap().seen.clone()
    }

    /// When the first and the last wanted object were seen with the target
    /// value; `None` before any was.
    pub fn seen_span(&self) -> Option<(Instant, Instant)> {
        let state = self.state.lock().unwrap();
        let seen = state.seen.iter().flatten();
        Some((*seen.clone().min()?, *seen.max()?))
    }

    pub async fn watch(self: Arc<Self>, api: Api<Deployment>) {
        let mut events = watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(event) = events.next().await {
            let now = Instant::now();
            match event {
                Ok(Event::InitApply(d) | Event::Apply(d)) => self.observe(&d, now),
                Ok(Event::InitDone) => {
                    self.state.lock().unwrap().listed = true;
                    self.progress.notify_waiters();
                }
                Ok(_) => {}
                Err(e) => eprintln!("  bench watch: {e} (the watcher retries)"),
            }
        }
    }

    fn observe(&self, d: &Deployment, now: Instant) {
        let Some(i) = index_of(&d.name_any()) else {
            return;
        };
        let available = d.status.as_ref().and_then(|s| s.available_replicas);
        let labelled = d.labels().contains_key(SINGLETON_STATUS_LABEL);
        let mut s = self.state.lock().unwrap();
        if labelled
            && available.map(i64::from) == Some(s.target)
            && s.wanted.contains(&i)
            && s.seen[i].is_none()
        {
            s.seen[i] = Some(now);
            s.count += 1;
            if s.count == s.wanted.len() {
                drop(s);
                self.progress.notify_waiters();
            }
        }
    }

    pub async fn wait_listed(&self) {
        loop {
            let notified = self.progress.notified();
            if self.state.lock().unwrap().listed {
                return;
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
        }
    }

    /// Waits until every wanted object was seen; fails after [`STALL`] without progress.
    pub async fn wait_all(&self, phase: &str, ctl: Option<&Ctl>) -> anyhow::Result<()> {
        let start = Instant::now();
        let mut last_progress = Instant::now();
        let mut last_count = usize::MAX;
        let mut last_print = Instant::now();
        loop {
            let notified = self.progress.notified();
            let (count, wanted) = {
                let s = self.state.lock().unwrap();
                (s.count, s.wanted.len())
            };
            if count == wanted {
                return Ok(());
            }
            if count != last_count {
                last_count = count;
                last_progress = Instant::now();
            }
            if last_print.elapsed() >= Duration::from_secs(10) {
                last_print = Instant::now();
                let counters = counters_of(ctl).await;
                eprintln!(
                    "  {phase}: {count}/{wanted} after {:.0?} {counters}",
                    start.elapsed()
                );
            }
            if last_progress.elapsed() > STALL {
                let counters = counters_of(ctl).await;
                bail!(
                    "{phase}: stalled at {count}/{wanted} for {STALL:?} (controller: {counters})"
                );
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), notified).await;
        }
    }
}

/// The controller's counters as one line, or nothing when there is no controller.
async fn counters_of(ctl: Option<&Ctl>) -> String {
    match ctl {
        Some(ctl) => ctl
            .counters()
            .await
            .map(|c| c.to_string())
            .unwrap_or_default(),
        None => String::new(),
    }
}
