//! Hot-swapping the policy of a running controller.
//!
//! A new module comes from a [`file`] (including a mounted ConfigMap's
//! `..data` symlink swap) or a [`configmap`] watched through the API. It is
//! [`validate`]d first: compiled (or taken from the compiled cache), checked
//! against the WIT contract, its sha256 pinned where asked, its embedded
//! self-test and the operator's conformance cases passed. Only then does
//! [`ActivePolicy::activate`] swap it in, atomically: workers pick the new
//! module at their next reconcile without any lock on the decide path, and a
//! reconcile already running finishes with the module it started with. The
//! controller then reconciles every object it tracks. A rejected module
//! changes nothing; the running policy keeps serving.

pub mod configmap;
pub mod file;
pub mod validate;

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::policy::Policy;

pub use validate::{Rejection, Validator};

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
    pub fn reject(&self, source: &str, rejection: &Rejection) {
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
        crate::controller::metrics::render(&registry)
    }
}

/// Takes modules from the sources, validates them off the async threads,
/// and activates or rejects them.
pub struct Swapper {
    validator: Arc<Validator>,
    active: Arc<ActivePolicy>,
    events: Option<Recorder>,
    last_rejected: Mutex<Option<String>>,
}

impl Swapper {
    /// `events`: where to record an Event for each swap and rejection.
    pub fn new(validator: Validator, active: Arc<ActivePolicy>, events: Option<Recorder>) -> Self {
        Self {
            validator: Arc::new(validator),
            active,
            events,
            last_rejected: Mutex::new(None),
        }
    }

    /// The policy being served.
    pub fn active(&self) -> &Arc<ActivePolicy> {
        &self.active
    }

    /// Offers a module from `source`; `about` is the object to record Events on.
    pub async fn offer(&self, source: String, bytes: Vec<u8>, about: Option<ObjectReference>) {
        let digest = format!("sha256:{:x}", Sha256::digest(&bytes));
        if digest == self.active.current().policy.info().digest {
            tracing::debug!(%source, %digest, "policy unchanged");
            return;
        }
        // A relist or a touched file offers the same bytes again: a module
        // rejected once is not validated, counted and reported again.
        {
            let mut last = self.last_rejected.lock().expect("swapper lock");
            if last.as_deref() == Some(digest.as_str()) {
                tracing::debug!(%source, %digest, "policy already rejected");
                return;
            }
            *last = None;
        }
        let validator = self.validator.clone();
        let checked_source = source.clone();
        let result =
            tokio::task::spawn_blocking(move || validator.validate(&checked_source, &bytes))
                .await
                .expect("policy validation does not panic");
        let (type_, reason, note) = match result {
            Ok(module) => {
                let note = format!("policy {digest} from {source} is active");
                self.active.activate(module);
                (EventType::Normal, "PolicySwapped", note)
            }
            Err(rejection) => {
                self.active.reject(&source, &rejection);
                *self.last_rejected.lock().expect("swapper lock") = Some(digest.clone());
                let note = format!("policy {digest} from {source} rejected: {rejection}");
                (EventType::Warning, "PolicyRejected", note)
            }
        };
        if let (Some(recorder), Some(about)) = (&self.events, about) {
            let event = Event {
                type_,
                reason: reason.into(),
                note: Some(note),
                action: "SwapPolicy".into(),
                secondary: None,
            };
            if let Err(e) = recorder.publish(&event, &about).await {
                tracing::warn!(error = %e, "cannot record a policy Event");
            }
        }
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
        active.reject(
            "bad.wasm",
            &Rejection::Sha256 {
                expected: "a".into(),
                actual: "b".into(),
            },
        );
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
