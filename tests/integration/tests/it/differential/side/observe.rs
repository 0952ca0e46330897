//! What a side shows (its objects' statuses and labels, CombinedStatuses, the Bindings'
//! conditions) and waiting until it has settled: the Bindings as the model says, and nothing
//! changing for [`QUIET`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use kube::api::{Api, DynamicObject, ListParams};
use serde_json::{Value, json};
use status_router::controller::combined::condition::CONDITION;
use status_router::kubestellar::Binding;

use super::{Side, ar_of, combined_ar};
use crate::differential::scenario::{NAMESPACE, Scenario, State, wec_name};

/// How long the WDS objects must stay unchanged, with the Bindings as the model says, to count
/// as settled.
const QUIET: Duration = Duration::from_secs(8);
/// How long KubeStellar's binding controller may take to follow one change.
const BINDING_LIMIT: Duration = Duration::from_secs(300);
/// How long a side may take to settle.
const SETTLE_LIMIT: Duration = Duration::from_secs(300);

/// What one object shows at the end.
#[derive(Clone, Debug, PartialEq)]
pub struct Shown {
    pub status: Option<Value>,
    pub labels: BTreeMap<String, String>,
}

/// Everything a side shows at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Object name -> its status and KubeStellar's labels.
    pub objects: BTreeMap<String, Shown>,
    /// (object name, BindingPolicy name) -> the CombinedStatus's `results`.
    pub combined: BTreeMap<(String, String), Value>,
    /// Binding name -> its `StatusCollectorsAvailable` condition (status, reason, message).
    pub conditions: BTreeMap<String, Option<(String, String, String)>>,
}

impl Side {
    /// Waits until KubeStellar's binding controller has made the Bindings the model says.
    pub(super) async fn wait_bindings(&self, scenario: &Scenario, state: &State) {
        let t0 = Instant::now();
        loop {
            let mismatch = match self.bindings().await {
                Ok(bindings) => destinations_mismatch(&bindings, state),
                Err(e) => Some(format!("list Bindings: {e}")),
            };
            let Some(mismatch) = mismatch else { break };
            self.assert_kubestellar_runs();
            assert!(
                t0.elapsed() < BINDING_LIMIT,
                "KubeStellar's binding controller did not make the Bindings of the model in \
                 {BINDING_LIMIT:?} on the {:?} side (seed {}): {mismatch}\nits log ({}) ends:\n{}",
                self.judge,
                scenario.settings.seed,
                self.kubestellar.log().display(),
                self.kubestellar.log_tail(30)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the Bindings say what the model says and everything the side shows (objects,
    /// CombinedStatuses, conditions) has stayed unchanged for [`QUIET`]; returns it.
    pub async fn settle(&mut self, scenario: &Scenario, last: &State) -> Snapshot {
        let t0 = Instant::now();
        let mut stable_since = Instant::now();
        let mut previous = None;
        loop {
            self.assert_kubestellar_runs();
            self.assert_status_router_runs();
            let bindings = self.bindings().await.expect("list Bindings");
            let bindings_ok = destinations_mismatch(&bindings, last).is_none();
            let shown = self.observe_with(scenario, &bindings).await;
            if !bindings_ok || previous.as_ref() != Some(&shown) {
                stable_since = Instant::now();
            } else if stable_since.elapsed() >= QUIET {
                return shown;
            }
            assert!(
                t0.elapsed() < SETTLE_LIMIT,
                "the {:?} side did not settle in {SETTLE_LIMIT:?} (Bindings as the model says: \
                 {bindings_ok})",
                self.judge
            );
            previous = Some(shown);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Every Binding of the WDS.
    async fn bindings(&self) -> Result<Vec<Binding>, kube::Error> {
        let list = Api::<Binding>::all(self.wds.clone())
            .list(&ListParams::default())
            .await?;
        Ok(list.items)
    }

    /// What the side shows now.
    pub async fn observe(&self, scenario: &Scenario) -> Snapshot {
        let bindings = self.bindings().await.expect("list Bindings");
        self.observe_with(scenario, &bindings).await
    }

    /// What the side shows now, its conditions taken from `bindings`.
    async fn observe_with(&self, scenario: &Scenario, bindings: &[Binding]) -> Snapshot {
        Snapshot {
            objects: self.objects(scenario).await,
            combined: self.combined().await,
            conditions: conditions(bindings),
        }
    }

    /// Every CombinedStatus of the scenario's namespace, by the object and BindingPolicy its
    /// labels name; the rows of each result sorted (their order carries no meaning, and
    /// KubeStellar's follows Go's map order).
    async fn combined(&self) -> BTreeMap<(String, String), Value> {
        let list =
            Api::<DynamicObject>::namespaced_with(self.wds.clone(), NAMESPACE, &combined_ar())
                .list(&ListParams::default())
                .await
                .expect("list CombinedStatuses");
        list.items
            .into_iter()
            .map(|cs| {
                let labels = cs.metadata.labels.clone().unwrap_or_default();
                let label = |k: &str| labels.get(k).cloned().unwrap_or_default();
                let key = (
                    label("status.kubestellar.io/name"),
                    label("status.kubestellar.io/binding-policy"),
                );
                let mut results = cs.data.get("results").cloned().unwrap_or(json!([]));
                for result in results.as_array_mut().into_iter().flatten() {
                    if let Some(rows) = result.get_mut("rows").and_then(Value::as_array_mut) {
                        rows.sort_by_key(Value::to_string);
                    }
                }
                (key, results)
            })
            .collect()
    }

    async fn objects(&self, scenario: &Scenario) -> BTreeMap<String, Shown> {
        let mut out = BTreeMap::new();
        for object in &scenario.objects {
            let api: Api<DynamicObject> =
                Api::namespaced_with(self.wds.clone(), NAMESPACE, &ar_of(object.kind));
            let o = api
                .get(&object.name)
                .await
                .unwrap_or_else(|e| panic!("get {}: {e}", object.name));
            let labels = o
                .metadata
                .labels
                .unwrap_or_default()
                .into_iter()
                .filter(|(k, _)| k.contains("kubestellar.io"))
                .collect();
            out.insert(
                object.name.clone(),
                Shown {
                    status: o.data.get("status").cloned(),
                    labels,
                },
            );
        }
        out
    }
}

/// How the Bindings' destinations differ from the model's (name -> WECs), if they do.
fn destinations_mismatch(bindings: &[Binding], last: &State) -> Option<String> {
    let seen: BTreeMap<String, BTreeSet<String>> = bindings
        .iter()
        .map(|b| {
            let name = b.metadata.name.clone().unwrap_or_default();
            let wecs = b.spec.destinations.iter().map(|d| d.cluster_id.clone());
            (name, wecs.collect())
        })
        .collect();
    let want: BTreeMap<String, BTreeSet<String>> = last
        .policies
        .iter()
        .enumerate()
        .filter_map(|(p, policy)| {
            let policy = policy.as_ref()?;
            let wecs = last.destinations(p).into_iter().map(wec_name).collect();
            Some((policy.name.clone(), wecs))
        })
        .collect();
    let names: BTreeSet<&String> = seen.keys().chain(want.keys()).collect();
    let differ: Vec<String> = names
        .into_iter()
        .filter(|n| seen.get(*n) != want.get(*n))
        .map(|n| {
            format!(
                "{n}: KubeStellar {:?}, model {:?}",
                seen.get(n),
                want.get(n)
            )
        })
        .collect();
    (!differ.is_empty()).then(|| differ.join("; "))
}

/// Every Binding's `StatusCollectorsAvailable` condition (status, reason, message).
fn conditions(bindings: &[Binding]) -> BTreeMap<String, Option<(String, String, String)>> {
    bindings
        .iter()
        .map(|b| {
            let name = b.metadata.name.clone().unwrap_or_default();
            let condition = b.status.as_ref().and_then(|s| {
                s.conditions
                    .iter()
                    .find(|c| c.type_ == CONDITION)
                    .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
            });
            (name, condition)
        })
        .collect()
}
