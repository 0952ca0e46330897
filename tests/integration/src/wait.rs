//! Waiting for the controller: polling until a probe holds (a status, an
//! Event), and letting the controller settle before checking that nothing
//! changed.

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::events::v1::Event as K8sEvent;
use kube::Client;
use kube::api::{Api, ListParams};

use crate::{GRACE, Running, TIMEOUT};

/// Polls `probe` every 100 ms until it returns `Ok`, or fails after
/// `timeout` showing what it last returned.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last) if start.elapsed() >= timeout => {
                panic!("timed out after {timeout:?} waiting for {what}; last observed: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Waits until the controller has run at least one more reconcile than
/// `since`, then for [`GRACE`], so that "nothing changed" is checked after
/// the controller has had its chance.
pub async fn settle(running: &Running, since: u64) {
    wait_for("the controller to reconcile", TIMEOUT, || async {
        let now = running.reconciles();
        if now > since {
            Ok(())
        } else {
            Err(format!("reconciles = {now}"))
        }
    })
    .await;
    tokio::time::sleep(GRACE).await;
}

/// Waits for an events.k8s.io/v1 Event with `reason` and `type_` (`Normal` or
/// `Warning`) about the object `kind` `ns/name`.
pub async fn wait_event(
    client: &Client,
    (kind, ns, name): (&str, &str, &str),
    reason: &str,
    type_: &str,
) -> K8sEvent {
    let events: Api<K8sEvent> = Api::namespaced(client.clone(), ns);
    let what = format!("a {type_} Event {reason} on {kind} {ns}/{name}");
    wait_for(&what, TIMEOUT, || async {
        let list = events
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?;
        let about_it = |e: &K8sEvent| {
            e.regarding
                .as_ref()
                .is_some_and(|r| r.kind.as_deref() == Some(kind) && r.name.as_deref() == Some(name))
        };
        let seen: Vec<String> = list
            .items
            .iter()
            .filter(|e| about_it(e))
            .map(|e| format!("{:?}/{:?}", e.type_, e.reason))
            .collect();
        list.items
            .into_iter()
            .find(|e| {
                about_it(e)
                    && e.reason.as_deref() == Some(reason)
                    && e.type_.as_deref() == Some(type_)
            })
            .ok_or_else(|| format!("Events about it: {seen:?}"))
    })
    .await
}
