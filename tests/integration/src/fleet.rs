//! A fleet of Deployments reported by two WECs whose statuses the policy
//! decides, for the hot-swap tests (which serve it with `Running::serve`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use serde_json::Value;
use status_router::policy::active::ActivePolicy;

use crate::*;

/// `n` Deployments, each named by one Binding with both flags and two WECs
/// that report different statuses: the default policy aggregates them.
#[derive(Clone)]
pub struct Fleet {
    pub ns: String,
    wec2: String,
    names: Vec<String>,
    api: Api<DynamicObject>,
}

/// What wec1 reports for every Deployment.
pub fn report1() -> Value {
    deployment_status(3, 3)
}

/// What wec2 reports, with `ready` ready replicas.
pub fn report2(ready: i64) -> Value {
    deployment_status(3, ready)
}

impl Fleet {
    pub async fn create(env: &Env, wds_name: &str, n: usize) -> Self {
        let ns = env.namespace().await;
        let (wec1, wec2) = (env.wec().await, env.wec().await);
        let binding = testenv::unique_name("hotswap");
        let names: Vec<String> = (0..n).map(|i| format!("web-{i}")).collect();
        stream::iter(&names)
            .for_each_concurrent(8, |name| {
                let (ns, wec1, wec2, binding) = (&ns, &wec1, &wec2, &binding);
                async move {
                    create_deployment(&env.wds, ns, name).await;
                    let object = (ns.as_str(), name.as_str());
                    report_deployment(&env.its, wec1, wds_name, binding, object, Some(&report1()))
                        .await;
                    report_deployment(&env.its, wec2, wds_name, binding, object, Some(&report2(1)))
                        .await;
                }
            })
            .await;
        let clauses = names
            .iter()
            .map(|name| deployment_clause(&ns, name, BOTH))
            .collect();
        env.put_binding(&binding, binding_spec(&[&wec1, &wec2], clauses, vec![]))
            .await;
        let api = Api::namespaced_with(
            env.wds.clone(),
            &ns,
            &ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&()),
        );
        Self {
            ns,
            wec2,
            names,
            api,
        }
    }

    /// The aggregate of the two reports when wec2 reports `ready`.
    pub fn aggregate(ready: i64) -> Value {
        deployment_status(3, ready.min(3))
    }

    pub async fn observe(&self) -> BTreeMap<String, Observed> {
        self.api
            .list(&ListParams::default())
            .await
            .expect("list the Deployments")
            .items
            .iter()
            .filter_map(|o| Some((o.metadata.name.clone()?, observed(o))))
            .collect()
    }

    /// Waits until every Deployment satisfies `want`.
    pub async fn wait_all(&self, what: &str, want: impl Fn(&Observed) -> bool) {
        let what = format!(
            "all {} Deployments of {}: {what}",
            self.names.len(),
            self.ns
        );
        wait_for(&what, TIMEOUT, || async {
            let all = self.observe().await;
            let missing = self.names.iter().filter(|n| !all.contains_key(*n)).count();
            let wrong: Vec<_> = all.iter().filter(|(_, o)| !want(o)).collect();
            match (missing, wrong.first()) {
                (0, None) => Ok(()),
                (_, first) => Err(format!(
                    "{missing} missing, {} not yet, for example {first:?}",
                    wrong.len()
                )),
            }
        })
        .await;
    }

    pub async fn resource_versions(&self) -> BTreeMap<String, String> {
        self.observe()
            .await
            .into_iter()
            .map(|(name, o)| (name, o.resource_version))
            .collect()
    }

    /// Watches for `window` that no Deployment changes, and that the swaps
    /// counted stay `swaps` (a rejected module is not offered again and again).
    pub async fn assert_unchanged(
        &self,
        before: &BTreeMap<String, String>,
        active: &ActivePolicy,
        swaps: (u64, u64),
    ) {
        let end = Instant::now() + GRACE;
        loop {
            let now = self.resource_versions().await;
            assert_eq!(&now, before, "a Deployment changed after a rejected module");
            assert_eq!(active.swaps(), swaps, "{}", active.status());
            if Instant::now() >= end {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Writes wec2's report of every Deployment.
    pub async fn report2_all(&self, its: &kube::Client, ready: i64) {
        stream::iter(&self.names)
            .for_each_concurrent(8, |name| async move {
                let ws = format!("appsv1-deployment-{}-{name}", self.ns);
                set_report_status(its, &self.wec2, &ws, Some(&report2(ready))).await;
            })
            .await;
    }
}
