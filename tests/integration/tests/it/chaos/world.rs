//! The inputs of a chaos run, as KubeStellar's binding controller and status
//! agents would write them: workload objects of three kinds, Bindings over
//! several WECs, WorkStatuses, and the random changes to all of them. Every
//! call has a timeout and may fail (a server may be down or stopped): the
//! suite never trusts what it believes it wrote, and reads the final inputs
//! back from the servers (see `oracle`).

use std::collections::BTreeMap;
use std::time::Duration;

use kube::Client;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use status_router::kubestellar::{
    Binding, BindingSpec, ORIGIN_BINDING_LABEL, ORIGIN_WDS_LABEL, SourceRef, WorkStatus,
    WorkStatusSpec,
};

use super::plan::Rng;
use integration_tests::{Flags, api_resource, binding_spec, clause};

pub const WDS_NAME: &str = "chaos-wds";
pub const NAMESPACE: &str = "chaos";
pub const WECS: [&str; 4] = ["chaos-wec-1", "chaos-wec-2", "chaos-wec-3", "chaos-wec-4"];
/// Objects per Binding.
const PER_BINDING: usize = 10;
/// How long one call may take before the suite gives up on it.
const CALL: Duration = Duration::from_secs(3);
/// The annotation that makes the label-driven policy take the maximum.
pub const AGGREGATE_NUMBERS: &str = "status-router.kubestellar.io/aggregate-numbers";

/// A workload kind: (group, version, resource, kind).
pub type Kind = (&'static str, &'static str, &'static str, &'static str);
pub const KINDS: [Kind; 3] = [
    ("apps", "v1", "deployments", "Deployment"),
    ("apps", "v1", "statefulsets", "StatefulSet"),
    ("statusrouter.example.com", "v1alpha1", "gadgets", "Gadget"),
];

pub fn api_of(client: &Client, kind: Kind) -> Api<DynamicObject> {
    let ar: ApiResource = api_resource(kind.0, kind.1, kind.3, kind.2);
    Api::namespaced_with(client.clone(), NAMESPACE, &ar)
}

/// One workload object of the run.
#[derive(Clone, Debug)]
pub struct Object {
    pub kind: Kind,
    pub name: String,
    /// Annotated for the label-driven policy to aggregate numbers by `max`.
    pub max: bool,
}

impl Object {
    fn report_name(&self) -> String {
        format!("{}-{}-{NAMESPACE}-{}", self.kind.1, self.kind.2, self.name)
    }
}

/// A status the API server's validation accepts for the kind
/// (ready <= replicas); aggregating by min or max keeps that true.
pub fn status(kind: Kind, replicas: i64, ready: i64) -> Value {
    match kind.2 {
        "statefulsets" => json!({"observedGeneration": 1, "replicas": replicas,
            "readyReplicas": ready, "currentReplicas": ready, "updatedReplicas": ready}),
        _ => json!({"observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas,
            "readyReplicas": ready, "availableReplicas": ready}),
    }
}

fn manifest(object: &Object, decoy: bool) -> Value {
    let mut annotations = serde_json::Map::new();
    if object.max {
        annotations.insert(AGGREGATE_NUMBERS.into(), "max".into());
    }
    let labels = json!({"app": object.name, "chaos-decoy": decoy.to_string()});
    let meta = json!({"name": object.name, "namespace": NAMESPACE, "labels": labels,
                      "annotations": annotations});
    let template = json!({"metadata": {"labels": {"app": object.name}},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}});
    let (group, version, _, kind) = object.kind;
    let api_version = format!("{group}/{version}");
    match kind {
        "Deployment" => json!({"apiVersion": api_version, "kind": kind, "metadata": meta,
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": object.name}},
                     "template": template}}),
        "StatefulSet" => json!({"apiVersion": api_version, "kind": kind, "metadata": meta,
            "spec": {"replicas": 2, "serviceName": object.name,
                     "selector": {"matchLabels": {"app": object.name}}, "template": template}}),
        _ => json!({"apiVersion": api_version, "kind": kind, "metadata": meta,
                    "spec": {"size": 2}}),
    }
}

/// A call under the suite's timeout; `None` when it failed or took too long.
pub async fn call<T, E: std::fmt::Display>(
    what: &str,
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Option<T> {
    match tokio::time::timeout(CALL, f).await {
        Ok(Ok(v)) => Some(v),
        Ok(Err(e)) => {
            if std::env::var_os("CHAOS_VERBOSE").is_some() {
                eprintln!("chaos: {what}: {e}");
            }
            None
        }
        Err(_) => None,
    }
}

/// Retries a call until it succeeds (setup only: the servers are up).
async fn must<T, E, F, Fut>(what: &str, mut f: F) -> T
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    for _ in 0..20 {
        if let Some(v) = call(what, f()).await {
            return v;
        }
        // Backoff: a freshly started server may still refuse a request.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{what}: failed 20 times");
}

/// What the suite believes it wrote, to choose the next change.
pub struct World {
    pub wds: Client,
    pub its: Client,
    pub objects: Vec<Object>,
    /// Objects nothing routes status to, each with a status someone else
    /// wrote: the controller must never touch them.
    pub decoys: Vec<Object>,
    pub bindings: BTreeMap<String, BindingSpec>,
    /// (object index, WEC index) of the WorkStatuses believed to exist.
    pub reports: BTreeMap<(usize, usize), ()>,
}

fn flags(rng: &mut Rng) -> Flags {
    match rng.below(4) {
        0 => Flags {
            singleton: true,
            multi_wec: false,
        },
        1 => Flags {
            singleton: false,
            multi_wec: true,
        },
        2 => Flags {
            singleton: true,
            multi_wec: true,
        },
        _ => Flags {
            singleton: false,
            multi_wec: false,
        },
    }
}

fn destinations(rng: &mut Rng) -> Vec<&'static str> {
    let mut wecs: Vec<&str> = WECS.iter().copied().filter(|_| rng.chance(50)).collect();
    if wecs.is_empty() {
        wecs.push(WECS[rng.below(WECS.len())]);
    }
    wecs
}

impl World {
    /// Creates the objects, the decoys, the Bindings and the first reports.
    pub async fn create(wds: Client, its: Client, rng: &mut Rng, n: usize) -> World {
        let objects: Vec<Object> = (0..n)
            .map(|i| Object {
                kind: KINDS[i % KINDS.len()],
                name: format!("o-{i}"),
                max: rng.chance(33),
            })
            .collect();
        let decoys: Vec<Object> = (0..9)
            .map(|i| Object {
                kind: KINDS[i % KINDS.len()],
                name: format!("decoy-{i}"),
                max: false,
            })
            .collect();
        let mut world = World {
            wds,
            its,
            objects,
            decoys,
            bindings: BTreeMap::new(),
            reports: BTreeMap::new(),
        };
        let creates = world
            .objects
            .iter()
            .map(|o| (o, false))
            .chain(world.decoys.iter().map(|o| (o, true)));
        let wds = &world.wds;
        futures::stream::iter(creates)
            .for_each_concurrent(8, |(o, decoy)| async move {
                let api = api_of(wds, o.kind);
                let object: DynamicObject = serde_json::from_value(manifest(o, decoy)).unwrap();
                let params = PostParams::default();
                must(&format!("create {}", o.name), || {
                    api.create(&params, &object)
                })
                .await;
                if decoy {
                    // Someone else's status, without our labels.
                    let status = Patch::Merge(json!({"status": status(o.kind, 3, 1)}));
                    let params = PatchParams::default();
                    if o.kind.2 == "gadgets" {
                        must("decoy status", || api.patch(&o.name, &params, &status)).await;
                    } else {
                        must("decoy status", || {
                            api.patch_status(&o.name, &params, &status)
                        })
                        .await;
                    }
                }
            })
            .await;
        // Bindings of PER_BINDING objects each; about one object in ten is
        // also named by the next Binding. The decoys have a Binding without flags.
        let count = n.div_ceil(PER_BINDING);
        for b in 0..count {
            let mut clauses = Vec::new();
            for i in b * PER_BINDING..((b + 1) * PER_BINDING).min(n) {
                clauses.push((i, flags(rng)));
            }
            if count > 1 {
                let next = ((b + 1) % count) * PER_BINDING;
                if rng.chance(90) && next < n {
                    clauses.push((next, flags(rng)));
                }
            }
            let spec = world.spec(&destinations(rng), &clauses);
            world.bindings.insert(format!("chaos-{b}"), spec);
        }
        let decoy_clauses: Vec<_> = world
            .decoys
            .iter()
            .map(|o| {
                clause(
                    (o.kind.0, o.kind.1, o.kind.2),
                    NAMESPACE,
                    &o.name,
                    Flags::default(),
                )
            })
            .collect();
        let decoy_spec = binding_spec(&WECS, decoy_clauses, vec![]);
        must("decoy Binding", || {
            put(&world.wds, "chaos-decoys", &decoy_spec)
        })
        .await;
        let names: Vec<String> = world.bindings.keys().cloned().collect();
        for name in names {
            let spec = world.bindings[&name].clone();
            must(&format!("Binding {name}"), || put(&world.wds, &name, &spec)).await;
        }
        let mut reports = Vec::new();
        for i in 0..n {
            for w in 0..WECS.len() {
                if rng.chance(60) {
                    reports.push((i, w, rng.next_u64()));
                }
            }
        }
        let world_ref = &world;
        futures::stream::iter(reports.iter().copied())
            .for_each_concurrent(8, |(i, w, r)| async move {
                let mut rng = Rng::new(r);
                assert!(
                    world_ref.create_report(i, w, &mut rng).await,
                    "create a report"
                );
            })
            .await;
        for (i, w, _) in reports {
            world.reports.insert((i, w), ());
        }
        world
    }

    fn spec(&self, wecs: &[&str], clauses: &[(usize, Flags)]) -> BindingSpec {
        let clauses = clauses
            .iter()
            .map(|&(i, f)| {
                let o = &self.objects[i];
                clause((o.kind.0, o.kind.1, o.kind.2), NAMESPACE, &o.name, f)
            })
            .collect();
        binding_spec(wecs, clauses, vec![])
    }

    /// Which Binding is the home of object `i`.
    fn binding_of(&self, i: usize) -> String {
        format!("chaos-{}", i / PER_BINDING)
    }

    /// Creates the WorkStatus of object `i` in WEC `w` with a status; one
    /// in twenty names another WDS (not ours: it must be ignored).
    async fn create_report(&self, i: usize, w: usize, rng: &mut Rng) -> bool {
        let o = &self.objects[i];
        let mut labels = BTreeMap::from([(ORIGIN_BINDING_LABEL.to_string(), self.binding_of(i))]);
        let origin = if rng.chance(5) { "other-wds" } else { WDS_NAME };
        labels.insert(ORIGIN_WDS_LABEL.to_string(), origin.into());
        let mut ws = WorkStatus {
            spec: WorkStatusSpec {
                source_ref: SourceRef {
                    group: o.kind.0.into(),
                    version: o.kind.1.into(),
                    resource: o.kind.2.into(),
                    kind: o.kind.3.into(),
                    namespace: NAMESPACE.into(),
                    name: o.name.clone(),
                },
            },
            ..Default::default()
        };
        ws.metadata.name = Some(o.report_name());
        ws.metadata.namespace = Some(WECS[w].into());
        ws.metadata.labels = Some(labels);
        let api: Api<WorkStatus> = Api::namespaced(self.its.clone(), WECS[w]);
        let created = call("create report", api.create(&PostParams::default(), &ws)).await;
        created.is_some() && self.report_status(i, w, rng).await
    }

    async fn report_status(&self, i: usize, w: usize, rng: &mut Rng) -> bool {
        let o = &self.objects[i];
        let replicas = 1 + rng.below(5) as i64;
        let ready = rng.below(replicas as usize + 1) as i64;
        let patch = Patch::Merge(json!({"status": status(o.kind, replicas, ready)}));
        let api: Api<WorkStatus> = Api::namespaced(self.its.clone(), WECS[w]);
        call(
            "report",
            api.patch_status(&o.report_name(), &PatchParams::default(), &patch),
        )
        .await
        .is_some()
    }

    /// One random change, as the binding controller and the agents make
    /// them; returns what it was.
    pub async fn mutate(&mut self, rng: &mut Rng) -> &'static str {
        let n = self.objects.len();
        let (i, w) = (rng.below(n), rng.below(WECS.len()));
        match rng.below(100) {
            0..60 => {
                let Some(&(i, w)) = self
                    .reports
                    .keys()
                    .nth(rng.below(self.reports.len().max(1)))
                else {
                    return "nothing";
                };
                self.report_status(i, w, rng).await;
                "report"
            }
            60..70 => {
                if self.create_report(i, w, rng).await {
                    self.reports.insert((i, w), ());
                }
                "create report"
            }
            70..80 => {
                let api: Api<WorkStatus> = Api::namespaced(self.its.clone(), WECS[w]);
                let name = self.objects[i].report_name();
                if call("delete report", api.delete(&name, &DeleteParams::default()))
                    .await
                    .is_some()
                {
                    self.reports.remove(&(i, w));
                }
                "delete report"
            }
            80..90 => {
                let name = self.binding_of(i);
                let Some(mut spec) = self.bindings.get(&name).cloned() else {
                    return "nothing";
                };
                spec.destinations = binding_spec(&destinations(rng), vec![], vec![]).destinations;
                call("Binding", put(&self.wds, &name, &spec)).await;
                self.bindings.insert(name, spec);
                "Binding destinations"
            }
            _ => {
                let name = self.binding_of(i);
                let Some(mut spec) = self.bindings.get(&name).cloned() else {
                    return "nothing";
                };
                let clauses = &mut spec.workload.namespace_scope;
                let c = rng.below(clauses.len());
                let f = flags(rng);
                clauses[c].modulation.want_singleton_reported_state = f.singleton;
                clauses[c].modulation.want_multi_wec_reported_state = f.multi_wec;
                call("Binding", put(&self.wds, &name, &spec)).await;
                self.bindings.insert(name, spec);
                "Binding flags"
            }
        }
    }

    /// Gives every WorkStatus without a status one (a create may have been
    /// cut between the object and its status): the final inputs then say
    /// exactly what every object's status must be.
    pub async fn complete_reports(&self, rng: &mut Rng) {
        for (w, wec) in WECS.iter().enumerate() {
            let api: Api<WorkStatus> = Api::namespaced(self.its.clone(), wec);
            let params = kube::api::ListParams::default();
            let list = must("list reports", || api.list(&params)).await;
            for ws in list.items.iter().filter(|ws| ws.status.is_none()) {
                let name = ws.metadata.name.clone().unwrap_or_default();
                if let Some(i) = self.objects.iter().position(|o| o.report_name() == name) {
                    while !self.report_status(i, w, rng).await {
                        // Poll: the ITS may be coming back from a fault.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        }
    }
}

/// Creates the Binding, or replaces its spec.
async fn put(client: &Client, name: &str, spec: &BindingSpec) -> Result<Binding, kube::Error> {
    let api: Api<Binding> = Api::all(client.clone());
    let mut binding = Binding::new(name, spec.clone());
    match api.get_opt(name).await? {
        None => api.create(&PostParams::default(), &binding).await,
        Some(existing) => {
            binding.metadata.resource_version = existing.metadata.resource_version;
            api.replace(name, &PostParams::default(), &binding).await
        }
    }
}

use futures::StreamExt as _;
