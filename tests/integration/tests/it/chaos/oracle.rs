//! What every object's status and labels must be, computed from the final
//! inputs read back from the servers, independently of the controller's
//! code: KubeStellar's routing table and write rules, written out again
//! here, and the aggregation of these flat numeric statuses (each number the
//! minimum over the WECs; the maximum, under the label-driven policy, for an
//! object annotated `aggregate-numbers: max`).

use std::collections::{BTreeMap, BTreeSet};

use kube::api::{Api, ListParams};
use serde_json::{Map, Value, json};
use status_router::kubestellar::{Binding, ORIGIN_WDS_LABEL, WorkStatus};

use super::world::{NAMESPACE, Object, WDS_NAME, WECS, World, api_of, call};
use integration_tests::Observed;

/// The final inputs.
pub struct Inputs {
    bindings: Vec<Binding>,
    /// Our WorkStatuses: (WEC, sourceRef name, resource) -> status.
    reports: BTreeMap<(String, String, String), Option<Value>>,
}

impl Inputs {
    pub async fn read(world: &World) -> Option<Inputs> {
        let bindings: Api<Binding> = Api::all(world.wds.clone());
        let bindings = call("list Bindings", bindings.list(&ListParams::default()))
            .await?
            .items;
        let mut reports = BTreeMap::new();
        for wec in WECS {
            let api: Api<WorkStatus> = Api::namespaced(world.its.clone(), wec);
            for ws in call("list reports", api.list(&ListParams::default()))
                .await?
                .items
            {
                let origin = ws
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(ORIGIN_WDS_LABEL));
                if origin.is_some_and(|o| o != WDS_NAME) {
                    continue;
                }
                let source = &ws.spec.source_ref;
                reports.insert(
                    (
                        wec.to_string(),
                        source.name.clone(),
                        source.resource.clone(),
                    ),
                    ws.status.clone(),
                );
            }
        }
        Some(Inputs { bindings, reports })
    }

    /// What `object` must show, under the default policy or (after the
    /// swap) the label-driven one.
    pub fn expected(&self, object: &Object, label_driven: bool) -> Observed {
        let (mut want_s, mut want_m) = (false, false);
        let (mut s, mut m) = (BTreeSet::new(), BTreeSet::new());
        for b in &self.bindings {
            for c in &b.spec.workload.namespace_scope {
                let o = &c.object;
                if (o.group.as_str(), o.resource.as_str()) != (object.kind.0, object.kind.2)
                    || c.namespace != NAMESPACE
                    || o.name != object.name
                {
                    continue;
                }
                let wecs = b.spec.destinations.iter().map(|d| d.cluster_id.clone());
                if c.modulation.want_singleton_reported_state {
                    want_s = true;
                    s.extend(wecs.clone());
                }
                if c.modulation.want_multi_wec_reported_state {
                    want_m = true;
                    m.extend(wecs);
                }
            }
        }
        // `kubestellar.io/executing-count`: while singleton return is
        // requested, the size of the qualified set of either flag.
        let executing_count = want_s.then(|| s.union(&m).count().to_string());
        let decision = match (want_s, want_m) {
            (true, true) => {
                let u: BTreeSet<String> = s.union(&m).cloned().collect();
                if u.len() == 1 {
                    ("singleton", u)
                } else {
                    ("multi", u)
                }
            }
            (true, false) => ("singleton", s),
            (false, true) if m.len() == 1 => ("singleton", m),
            (false, true) => ("multi", m),
            (false, false) => ("none", BTreeSet::new()),
        };
        let reported: Vec<Value> = decision
            .1
            .iter()
            .filter_map(|wec| {
                let key = (wec.clone(), object.name.clone(), object.kind.2.to_string());
                self.reports.get(&key).cloned()
            })
            .map(|status| status.expect("complete_reports gave every report a status"))
            .collect();
        let observed = match (decision.0, reported.as_slice()) {
            ("singleton", [one]) if decision.1.len() == 1 => singleton(one),
            ("multi", [one]) => singleton(one),
            ("multi", many) if many.len() >= 2 => {
                let max = label_driven && object.max;
                Observed {
                    status: combine(many, max),
                    singleton: false,
                    multi_wec: true,
                    executing_count: None,
                    resource_version: String::new(),
                }
            }
            _ => cleared(),
        };
        Observed {
            executing_count,
            ..observed
        }
    }
}

fn singleton(status: &Value) -> Observed {
    Observed {
        status: status.clone(),
        singleton: true,
        multi_wec: false,
        executing_count: None,
        resource_version: String::new(),
    }
}

fn cleared() -> Observed {
    Observed {
        status: json!({}),
        singleton: false,
        multi_wec: false,
        executing_count: None,
        resource_version: String::new(),
    }
}

/// Each key's minimum (or maximum) over the WECs; every WEC reports the same
/// keys, all numbers.
fn combine(statuses: &[Value], max: bool) -> Value {
    let mut out = Map::new();
    for (key, first) in statuses[0].as_object().expect("a flat status") {
        let values = statuses.iter().map(|s| s[key].as_i64().expect("a number"));
        let v = if max { values.max() } else { values.min() };
        out.insert(
            key.clone(),
            v.unwrap_or_else(|| first.as_i64().unwrap()).into(),
        );
    }
    Value::Object(out)
}

/// What each object of the run shows now, by name (`None`: a list failed).
pub async fn observe(world: &World) -> Option<BTreeMap<String, (Observed, i64, Value)>> {
    let mut seen = BTreeMap::new();
    for kind in super::world::KINDS {
        let api = api_of(&world.wds, kind);
        for o in call("list objects", api.list(&ListParams::default()))
            .await?
            .items
        {
            let generation = o.metadata.generation.unwrap_or_default();
            let fields = serde_json::to_value(&o.metadata.managed_fields).unwrap_or_default();
            let name = o.metadata.name.clone().unwrap_or_default();
            seen.insert(name, (integration_tests::observed(&o), generation, fields));
        }
    }
    Some(seen)
}
