//! The policy a controller runs now, swappable while it runs: workers take
//! the current module lock-free at each reconcile ([`ActivePolicy::current`]),
//! a validated module is swapped in atomically ([`ActivePolicy::activate`])
//! with the previous one kept for rollback, and every swap is counted and
//! announced to subscribers. Where modules come from and how they are
//! validated is `hotswap`'s business.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::json;
use tokio::sync::watch;

use super::Policy;

const ACCEPTED: [(&str, &str); 1] = [("result", "accepted")];
const REJECTED: [(&str, &str); 1] = [("result", "rejected")];

/// A module that passed validation, with where and when it came from.
#[derive(Clone, Debug)]
pub struct ActiveModule {
    pub policy: Policy,
    /// Where it came from: a path, `configmap/NS/NAME`, or `builtin:default`.
    pub source: String,
    pub loaded_at: SystemTime,
    /// Whether the compiled cache served it.
    pub from_cache: bool,
}

/// The policy the controller runs, and the record of swaps.
pub struct ActivePolicy {
    current: ArcSwap<ActiveModule>,
    previous: Mutex<Option<Arc<ActiveModule>>>,
    /// `status_router_policy_swaps_total{result="accepted|rejected"}`.
    swaps: Family<[(&'static str, &'static str); 1], Counter>,
    /// `status_router_policy_info{digest,version}`: 1 for the active module.
    info: Family<[(&'static str, String); 2], Gauge>,
    loaded_at: Gauge<f64, AtomicU64>,
    last_rejection: Mutex<Option<String>>,
    generation: watch::Sender<u64>,
}

impl ActivePolicy {
    pub fn new(initial: ActiveModule) -> Arc<Self> {
        let active = Self {
            current: ArcSwap::from_pointee(initial.clone()),
            previous: Mutex::new(None),
            swaps: Family::default(),
            info: Family::default(),
            loaded_at: Gauge::default(),
            last_rejection: Mutex::new(None),
            generation: watch::Sender::new(0),
        };
        active.show(&initial);
        for result in [ACCEPTED, REJECTED] {
            // Both series exist from the start, at 0.
            drop(active.swaps.get_or_create(&result));
        }
        Arc::new(active)
    }

    /// Points the info and load-time metrics at `module`.
    fn show(&self, module: &ActiveModule) {
        let info = module.policy.info();
        self.info.clear();
        self.info
            .get_or_create(&[
                ("digest", info.digest.clone()),
                ("version", info.version.clone()),
            ])
            .set(1);
        self.loaded_at.set(unix_seconds(module.loaded_at));
    }

    /// The module to use now. Lock-free.
    pub fn current(&self) -> Arc<ActiveModule> {
        self.current.load_full()
    }

    /// Swaps a validated module in; the previous one is kept for rollback.
    pub fn activate(&self, module: ActiveModule) {
        let info = module.policy.info().clone();
        let (source, from_cache) = (module.source.clone(), module.from_cache);
        self.show(&module);
        let old = self.current.swap(Arc::new(module));
        tracing::info!(
            %source, digest = %info.digest, version = %info.version, from_cache,
            previous = %old.policy.info().digest, "policy swapped in"
        );
        *self.previous.lock().expect("policy lock") = Some(old);
        self.swaps.get_or_create(&ACCEPTED).inc();
        self.generation.send_modify(|g| *g += 1);
    }

    /// Records a rejected module; the current one keeps serving.
    pub fn reject(&self, source: &str, rejection: &dyn std::fmt::Display) {
        tracing::warn!(%source, reason = %rejection, "policy rejected; the running policy keeps serving");
        self.swaps.get_or_create(&REJECTED).inc();
        *self.last_rejection.lock().expect("policy lock") = Some(format!("{source}: {rejection}"));
    }

    /// Swaps the previous module back in (the current one becomes the
    /// previous, so a second rollback undoes the first). Returns false when
    /// no module was swapped out yet.
    pub fn rollback(&self) -> bool {
        let previous = self.previous.lock().expect("policy lock").take();
        match previous {
            Some(previous) => {
                self.activate(ActiveModule {
                    loaded_at: SystemTime::now(),
                    ..(*previous).clone()
                });
                true
            }
            None => false,
        }
    }

    /// Completes a `changed()` each time a module is swapped in.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Swaps accepted and rejected since start.
    pub fn swaps(&self) -> (u64, u64) {
        let count = |result| self.swaps.get_or_create(result).get();
        (count(&ACCEPTED), count(&REJECTED))
    }

    /// What `GET /policy` shows.
    pub fn status(&self) -> serde_json::Value {
        let current = self.current();
        let info = current.policy.info();
        let (accepted, rejected) = self.swaps();
        json!({
            "source": current.source,
            "digest": info.digest,
            "interface": info.interface,
            "version": info.version,
            "loadedAt": unix_seconds(current.loaded_at),
            "fromCompiledCache": current.from_cache,
            "swapsAccepted": accepted,
            "swapsRejected": rejected,
            "lastRejection": *self.last_rejection.lock().expect("policy lock"),
        })
    }

    /// Adds the policy's metrics to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "status_router_policy_info",
            "The active policy",
            self.info.clone(),
        );
        registry.register(
            "status_router_policy_loaded_timestamp_seconds",
            "When the active policy was loaded",
            self.loaded_at.clone(),
        );
        registry.register(
            "status_router_policy_swaps",
            "Policy swaps, by result",
            self.swaps.clone(),
        );
    }

    /// The policy's metrics in Prometheus' text format.
    pub fn render_metrics(&self) -> String {
        let mut registry = Registry::default();
        self.register(&mut registry);
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
            .expect("writing to a String does not fail");
        out
    }
}

fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{DEFAULT_POLICY, PolicyEngine};

    fn module(source: &str) -> ActiveModule {
        let engine = PolicyEngine::new().unwrap();
        ActiveModule {
            policy: engine.load(DEFAULT_POLICY).unwrap(),
            source: source.into(),
            loaded_at: SystemTime::now(),
            from_cache: false,
        }
    }

    #[test]
    fn activation_swaps_counts_notifies_and_rolls_back() {
        let active = ActivePolicy::new(module("first"));
        let mut changes = active.subscribe();
        let before = active.current();
        active.activate(module("second"));
        assert!(changes.has_changed().unwrap());
        changes.mark_unchanged();
        assert_eq!(active.current().source, "second");
        assert_eq!(before.source, "first", "a holder keeps the module it took");
        assert!(active.rollback());
        assert_eq!(active.current().source, "first");
        assert!(changes.has_changed().unwrap());
        assert_eq!(active.swaps(), (2, 0));
        assert!(active.rollback(), "a rollback can itself be rolled back");
        assert_eq!(active.current().source, "second");
    }

    #[test]
    fn rejection_is_counted_and_shown() {
        let active = ActivePolicy::new(module("first"));
        active.reject("bad.wasm", &"its sha256 is not the one pinned");
        assert_eq!(active.swaps(), (0, 1));
        let status = active.status();
        assert_eq!(status["source"], "first");
        assert!(
            status["lastRejection"]
                .as_str()
                .unwrap()
                .contains("bad.wasm")
        );
        assert!(
            active
                .render_metrics()
                .contains("status_router_policy_swaps_total{result=\"rejected\"} 1")
        );
    }
}
