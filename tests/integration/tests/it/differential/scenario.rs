//! One seed, one scenario: WECs with labels, workload objects of seven kinds, BindingPolicies
//! with cluster selectors, both flags in all four combinations and StatusCollectors (some of
//! them never created), and a timeline of what
//! KubeStellar's status add-on and users do (status updates, WorkStatus deletions, WEC label
//! changes that move objects between WECs, flag changes, policy deletions). Pure data: both
//! sides of the comparison replay exactly the same scenario.
//!
//! The generator is splitmix64 (as in the chaos suite), so a seed means the same scenario on
//! every machine and version.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

/// `DIFF_SEED` and `DIFF_OBJECTS` (`cargo xtask differential --seed N --objects N` sets them).
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub seed: u64,
    pub objects: usize,
}

/// The short form `cargo xtask test` runs.
pub const SHORT: Settings = Settings {
    seed: 1,
    objects: 28,
};

impl Settings {
    pub fn from_env() -> Settings {
        let get = |name: &str, default: u64| match std::env::var(name) {
            Ok(v) => v
                .parse()
                .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
            Err(_) => default,
        };
        Settings {
            seed: get("DIFF_SEED", SHORT.seed),
            objects: get("DIFF_OBJECTS", SHORT.objects as u64) as usize,
        }
    }
}

/// splitmix64.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i64
    }
}

/// A workload kind of the scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Deployment,
    ReplicaSet,
    DaemonSet,
    StatefulSet,
    Job,
    ConfigMap,
    /// `gadgets.statusrouter.example.com`: a CR without a status subresource.
    Gadget,
}

pub const KINDS: [Kind; 7] = [
    Kind::Deployment,
    Kind::ReplicaSet,
    Kind::DaemonSet,
    Kind::StatefulSet,
    Kind::Job,
    Kind::ConfigMap,
    Kind::Gadget,
];

impl Kind {
    /// (group, version, resource, kind).
    pub fn gvrk(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            Kind::Deployment => ("apps", "v1", "deployments", "Deployment"),
            Kind::ReplicaSet => ("apps", "v1", "replicasets", "ReplicaSet"),
            Kind::DaemonSet => ("apps", "v1", "daemonsets", "DaemonSet"),
            Kind::StatefulSet => ("apps", "v1", "statefulsets", "StatefulSet"),
            Kind::Job => ("batch", "v1", "jobs", "Job"),
            Kind::ConfigMap => ("", "v1", "configmaps", "ConfigMap"),
            Kind::Gadget => ("statusrouter.example.com", "v1alpha1", "gadgets", "Gadget"),
        }
    }

    /// The kinds KubeStellar v0.30 aggregates over several WECs.
    pub fn upstream_aggregates(self) -> bool {
        matches!(self, Kind::Deployment | Kind::ReplicaSet | Kind::DaemonSet)
    }

    /// The object's body (without `status`).
    pub fn manifest(self, name: &str, group: &str) -> Value {
        let (g, v, _, kind) = self.gvrk();
        let api_version = if g.is_empty() {
            v.to_string()
        } else {
            format!("{g}/{v}")
        };
        let meta = json!({"name": name, "namespace": NAMESPACE,
                          "labels": {"app": name, GROUP_LABEL: group}});
        let selector = json!({"matchLabels": {"app": name}});
        let template = json!({"metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}});
        let spec = match self {
            Kind::Deployment | Kind::ReplicaSet => {
                json!({"replicas": 2, "selector": selector, "template": template})
            }
            Kind::DaemonSet => json!({"selector": selector, "template": template}),
            Kind::StatefulSet => json!({"replicas": 2, "serviceName": name,
                                        "selector": selector, "template": template}),
            Kind::Job => {
                let mut template = template;
                template["spec"]["restartPolicy"] = json!("Never");
                json!({"template": template, "manualSelector": false})
            }
            Kind::ConfigMap => {
                return json!({"apiVersion": api_version, "kind": kind, "metadata": meta,
                              "data": {"k": "v"}});
            }
            Kind::Gadget => json!({"size": 2}),
        };
        json!({"apiVersion": api_version, "kind": kind, "metadata": meta, "spec": spec})
    }

    /// A status as a WEC would report it (`None`: the kind has none), valid for the API
    /// server's validation. Counters that are 0 are left out, as the API server omits them.
    pub fn status(self, rng: &mut Rng) -> Option<Value> {
        let replicas = rng.int(0, 4);
        let ready = rng.int(0, replicas);
        let mut status = match self {
            Kind::Deployment => json!({"observedGeneration": 1, "replicas": replicas,
                "updatedReplicas": replicas, "readyReplicas": ready, "availableReplicas": ready,
                "unavailableReplicas": replicas - ready}),
            Kind::ReplicaSet => json!({"observedGeneration": 1, "replicas": replicas,
                "fullyLabeledReplicas": replicas, "readyReplicas": ready,
                "availableReplicas": ready}),
            Kind::DaemonSet => json!({"observedGeneration": 1,
                "currentNumberScheduled": replicas, "desiredNumberScheduled": replicas,
                "numberReady": ready, "updatedNumberScheduled": replicas,
                "numberAvailable": ready, "numberUnavailable": replicas - ready,
                "numberMisscheduled": rng.int(0, 1)}),
            Kind::StatefulSet => json!({"observedGeneration": 1, "replicas": replicas,
                "readyReplicas": ready, "currentReplicas": replicas,
                "updatedReplicas": replicas, "availableReplicas": ready,
                "currentRevision": "rev-1", "updateRevision": "rev-1",
                "collisionCount": 0}),
            Kind::Job => json!({"active": replicas - ready, "succeeded": ready,
                "failed": rng.int(0, 1), "ready": 0}),
            Kind::ConfigMap => return None,
            Kind::Gadget => json!({"phase": if ready == replicas { "Ready" } else { "Pending" },
                "count": replicas, "healthy": ready == replicas}),
        };
        if let Some(fields) = status.as_object_mut() {
            fields.retain(|_, v| v != &json!(0));
            if self == Kind::Deployment && rng.chance(20) {
                fields.insert(
                    "conditions".into(),
                    json!([{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                            "message": "ok", "lastTransitionTime": "2026-12-01T00:00:00Z",
                            "lastUpdateTime": "2026-12-01T00:00:00Z"}]),
                );
            }
        }
        Some(status)
    }
}

/// The namespace of every workload object.
pub const NAMESPACE: &str = "diff";
/// The label BindingPolicies select objects by.
pub const GROUP_LABEL: &str = "differential.status-router.test/group";
/// The label keys WECs carry and cluster selectors match.
pub const WEC_KEYS: [&str; 2] = ["region", "tier"];
const WEC_VALUES: [&str; 2] = ["a", "b"];
/// How many WECs a scenario has.
pub const WECS: usize = 4;

/// The StatusCollectors every scenario creates in the WDS, by name.
pub const COLLECTORS: [&str; 3] = ["available", "first-wec", "wecs"];
/// A collector some policies name and nobody creates.
pub const ABSENT_COLLECTOR: &str = "absent";

/// The spec of one of [`COLLECTORS`]: an aggregation (with `AVG` and `MAX` over no rows, the
/// `NaN` and `-Inf` cases), a select of every WEC's status, and a select with a `limit`.
pub fn collector_spec(name: &str) -> Value {
    let subject = "returned.status.availableReplicas";
    match name {
        "available" => json!({
            "filter": "has(returned.status.availableReplicas)",
            "combinedFields": [
                {"name": "count", "type": "COUNT"},
                {"name": "sum", "type": "SUM", "subject": subject},
                {"name": "avg", "type": "AVG", "subject": subject},
                {"name": "max", "type": "MAX", "subject": subject},
            ],
            "limit": 20,
        }),
        "wecs" => json!({
            "select": [{"name": "wec", "def": "inventory.name"},
                       {"name": "status", "def": "returned.status"}],
            "limit": 20,
        }),
        "first-wec" => json!({
            "select": [{"name": "wec", "def": "inventory.name"}],
            "limit": 1,
        }),
        other => panic!("no collector {other:?} in the scenario"),
    }
}

#[derive(Clone, Debug)]
pub struct Object {
    pub kind: Kind,
    pub name: String,
    pub group: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub name: String,
    pub group: String,
    /// One `matchLabels` entry on the WECs.
    pub selector: (String, String),
    pub singleton: bool,
    pub multi: bool,
    /// The StatusCollectors its clause names.
    pub collectors: Vec<String>,
}

/// One step of the timeline.
#[derive(Clone, Debug)]
pub enum Event {
    /// The WEC reports a new status of the object (`None`: the status goes away).
    Status {
        object: usize,
        wec: usize,
        status: Option<Value>,
    },
    /// The status add-on deletes and re-creates no report: one WorkStatus goes away for good
    /// (as when an agent loses it) until a later change re-creates it.
    DeleteReport {
        policy: usize,
        object: usize,
        wec: usize,
    },
    /// A WEC label changes: objects move between WECs.
    Relabel {
        wec: usize,
        key: String,
        value: String,
    },
    /// A BindingPolicy's flags change.
    Flags {
        policy: usize,
        singleton: bool,
        multi: bool,
    },
    /// A BindingPolicy is deleted.
    DeletePolicy { policy: usize },
}

/// What the inputs are at one moment: the suite's model, which both sides replay.
#[derive(Clone, Debug)]
pub struct State {
    pub wec_labels: Vec<BTreeMap<String, String>>,
    pub policies: Vec<Option<Policy>>,
    /// What each WEC reports for each object it runs: (object, WEC) -> status.
    pub statuses: BTreeMap<(usize, usize), Option<Value>>,
    /// WorkStatuses deleted by a `DeleteReport` and not re-created since.
    pub lost: BTreeSet<(usize, usize, usize)>,
}

/// The whole scenario of one seed.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub settings: Settings,
    pub objects: Vec<Object>,
    pub initial: State,
    pub timeline: Vec<Event>,
}

pub fn wec_name(w: usize) -> String {
    format!("wec{}", w + 1)
}

impl State {
    /// (policy, object, WEC) for every WorkStatus the status add-on keeps: one per Binding that
    /// sends the object to the WEC.
    pub fn delivered(&self, objects: &[Object]) -> BTreeSet<(usize, usize, usize)> {
        let mut out = BTreeSet::new();
        for (p, policy) in self.policies.iter().enumerate() {
            let Some(policy) = policy else { continue };
            for w in self.destinations(p) {
                for (o, object) in objects.iter().enumerate() {
                    if object.group == policy.group && !self.lost.contains(&(p, o, w)) {
                        out.insert((p, o, w));
                    }
                }
            }
        }
        out
    }

    /// The WECs the policy's cluster selector matches.
    pub fn destinations(&self, p: usize) -> Vec<usize> {
        let Some(policy) = &self.policies[p] else {
            return Vec::new();
        };
        let (key, value) = &policy.selector;
        (0..self.wec_labels.len())
            .filter(|&w| self.wec_labels[w].get(key) == Some(value))
            .collect()
    }

    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::Status {
                object,
                wec,
                status,
            } => {
                self.statuses.insert((*object, *wec), status.clone());
            }
            Event::DeleteReport {
                policy,
                object,
                wec,
            } => {
                self.lost.insert((*policy, *object, *wec));
            }
            Event::Relabel { wec, key, value } => {
                self.wec_labels[*wec].insert(key.clone(), value.clone());
                // A move re-delivers: the agent writes the object's reports anew.
                self.lost.retain(|(_, _, w)| w != wec);
            }
            Event::Flags {
                policy,
                singleton,
                multi,
            } => {
                if let Some(p) = &mut self.policies[*policy] {
                    p.singleton = *singleton;
                    p.multi = *multi;
                }
            }
            Event::DeletePolicy { policy } => {
                self.policies[*policy] = None;
                self.lost.retain(|(p, _, _)| p != policy);
            }
        }
    }
}

/// Draws the scenario of `settings.seed`.
pub fn draw(settings: Settings) -> Scenario {
    let mut rng = Rng::new(settings.seed);
    let groups = (settings.objects / 6).max(2);
    let wec_labels: Vec<BTreeMap<String, String>> = (0..WECS)
        .map(|_| {
            WEC_KEYS
                .iter()
                .map(|k| (k.to_string(), WEC_VALUES[rng.below(2)].to_string()))
                .collect()
        })
        .collect();
    let objects: Vec<Object> = (0..settings.objects)
        .map(|i| {
            let kind = KINDS[rng.below(KINDS.len())];
            let kind_name = kind.gvrk().3.to_ascii_lowercase();
            Object {
                kind,
                name: format!("{kind_name}-{i}"),
                group: format!("g{}", rng.below(groups)),
            }
        })
        .collect();
    // Collectors come from a stream of their own, so that they do not change the rest.
    let mut collector_rng = Rng::new(settings.seed ^ 0x5eed_c011_ec70_0000);
    let mut policies = Vec::new();
    for g in 0..groups {
        // One or two policies per group: two give the OR of flags and the union of WECs.
        for k in 0..1 + usize::from(rng.chance(40)) {
            let key = WEC_KEYS[rng.below(WEC_KEYS.len())];
            policies.push(Some(Policy {
                name: format!("bp-g{g}-{k}"),
                group: format!("g{g}"),
                selector: (key.to_string(), WEC_VALUES[rng.below(2)].to_string()),
                singleton: rng.chance(50),
                multi: rng.chance(50),
                collectors: draw_collectors(&mut collector_rng),
            }));
        }
    }
    let mut statuses = BTreeMap::new();
    for (o, object) in objects.iter().enumerate() {
        for w in 0..WECS {
            // Now and then a WorkStatus without a status yet.
            let status = if rng.chance(10) {
                None
            } else {
                object.kind.status(&mut rng)
            };
            statuses.insert((o, w), status);
        }
    }
    let initial = State {
        wec_labels,
        policies,
        statuses,
        lost: BTreeSet::new(),
    };

    let mut state = initial.clone();
    let mut timeline = Vec::new();
    for _ in 0..settings.objects.max(10) {
        let event = match rng.below(100) {
            0..=54 => {
                let (o, w) = (rng.below(objects.len()), rng.below(WECS));
                Event::Status {
                    object: o,
                    wec: w,
                    status: objects[o].kind.status(&mut rng),
                }
            }
            55..=66 => {
                let delivered: Vec<_> = state.delivered(&objects).into_iter().collect();
                if delivered.is_empty() {
                    continue;
                }
                let (p, o, w) = delivered[rng.below(delivered.len())];
                Event::DeleteReport {
                    policy: p,
                    object: o,
                    wec: w,
                }
            }
            67..=80 => Event::Relabel {
                wec: rng.below(WECS),
                key: WEC_KEYS[rng.below(WEC_KEYS.len())].to_string(),
                value: WEC_VALUES[rng.below(2)].to_string(),
            },
            81..=93 => Event::Flags {
                policy: rng.below(state.policies.len()),
                singleton: rng.chance(50),
                multi: rng.chance(50),
            },
            _ => {
                let alive: Vec<usize> = (0..state.policies.len())
                    .filter(|&p| state.policies[p].is_some())
                    .collect();
                if alive.len() <= 1 {
                    continue;
                }
                Event::DeletePolicy {
                    policy: alive[rng.below(alive.len())],
                }
            }
        };
        state.apply(&event);
        timeline.push(event);
    }
    Scenario {
        settings,
        objects,
        initial,
        timeline,
    }
}

/// Half the policies name collectors: a non-empty subset of [`COLLECTORS`], now and then with
/// the absent one too.
fn draw_collectors(rng: &mut Rng) -> Vec<String> {
    if !rng.chance(50) {
        return Vec::new();
    }
    let mut named: Vec<String> = COLLECTORS
        .iter()
        .filter(|_| rng.chance(50))
        .map(|c| c.to_string())
        .collect();
    if named.is_empty() {
        named.push(COLLECTORS[rng.below(COLLECTORS.len())].to_string());
    }
    if rng.chance(20) {
        named.push(ABSENT_COLLECTOR.to_string());
    }
    named
}

impl Scenario {
    /// The inputs after the whole timeline.
    pub fn last_state(&self) -> State {
        let mut state = self.initial.clone();
        for event in &self.timeline {
            state.apply(event);
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_draws_the_same_scenario_every_time() {
        let settings = Settings {
            seed: 7,
            objects: 30,
        };
        let (a, b) = (draw(settings), draw(settings));
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        assert_ne!(
            format!("{a:?}"),
            format!(
                "{:?}",
                draw(Settings {
                    seed: 8,
                    ..settings
                })
            )
        );
    }
}
