//! Hot-swapping the policy of a running controller.
//!
//! A new module comes from a [`file`](mod@file) (including a mounted ConfigMap's
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

use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder};
use sha2::{Digest, Sha256};

use crate::policy::active::ActivePolicy;

pub use validate::{Rejection, Validator};

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
            if let Err(e) = crate::runtime::api::bounded(recorder.publish(&event, &about)).await {
                tracing::warn!(error = %e, "cannot record a policy Event");
            }
        }
    }
}
