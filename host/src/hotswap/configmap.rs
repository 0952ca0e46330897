//! A policy held in a ConfigMap (`binaryData` key `policy.wasm`), watched
//! through the API, so `kubectl create configmap --from-file=policy.wasm`
//! (or `kubectl apply`) is the whole deployment story.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kube::runtime::watcher::{self, Event};
use kube::{Client, Resource};

use super::Swapper;

/// The key of the module in the ConfigMap's `binaryData`.
pub const KEY: &str = "policy.wasm";

/// Watches ConfigMap `namespace/name` for ever, offering each new module.
pub async fn watch(client: Client, namespace: String, name: String, swapper: Arc<Swapper>) {
    let api: Api<ConfigMap> = Api::namespaced(client, &namespace);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let source = format!("configmap/{namespace}/{name}");
    tracing::info!(%source, key = KEY, "watching the policy ConfigMap");
    let mut events = watcher::watcher(api, config).boxed();
    // The controller's watch pacing (50 ms to 1 s), not kube's (up to 30 s):
    // a ConfigMap changed during an outage is swapped in soon after.
    let mut backoff = crate::runtime::watch::WatchBackoff::default();
    while let Some(event) = events.next().await {
        backoff.pace(&event).await;
        match event {
            Ok(Event::Apply(cm) | Event::InitApply(cm)) => {
                let about = Some(cm.object_ref(&()));
                match cm.binary_data.as_ref().and_then(|d| d.get(KEY)) {
                    Some(bytes) => swapper.offer(source.clone(), bytes.0.clone(), about).await,
                    None => {
                        tracing::warn!(%source, "the ConfigMap has no binaryData key {KEY}; keeping the running policy")
                    }
                }
            }
            Ok(Event::Delete(_)) => {
                tracing::warn!(%source, "the policy ConfigMap was deleted; keeping the running policy")
            }
            Ok(Event::Init | Event::InitDone) => {}
            Err(e) => {
                tracing::warn!(%source, error = %e, "policy ConfigMap watch failed; retrying")
            }
        }
    }
}
