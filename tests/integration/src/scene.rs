//! The start most controller tests share: the shared control plane, taken for this test
//! ([`Env`], which cleans up when it is dropped, also after a panic), a WDS name of its own, a
//! namespace and a Binding name; and the Deployment `web`, reported by WECs and sent to them by
//! the scene's Binding.

use serde_json::Value;

use crate::{Env, Flags, Target, binding_spec, create_deployment, deployment_clause};

/// One test's hold on the control plane, WDS name, namespace and Binding name. A test takes it
/// whole (`let s = Scene::new(..)`) or in parts (`let Scene { env, ns, .. } = ..`); either way
/// the [`Env`] inside deletes the test's Bindings and Deployments when it goes.
pub struct Scene {
    pub env: Env,
    pub wds_name: String,
    pub ns: String,
    pub binding: String,
}

impl Scene {
    /// Waits for the control plane ([`Env::new`]), then names a WDS, makes a namespace and
    /// names a Binding with the prefix `binding`.
    pub async fn new(binding: &str) -> Self {
        let env = Env::new().await;
        let wds_name = testenv::unique_name("wds");
        let ns = env.namespace().await;
        let binding = testenv::unique_name(binding);
        Scene {
            env,
            wds_name,
            ns,
            binding,
        }
    }

    /// Creates the Deployment `web` in the scene's namespace.
    pub async fn web(&self) -> Target {
        create_deployment(&self.env.wds, &self.ns, "web").await
    }

    /// `wec` reports `status` for `web` (through the scene's Binding), as the status agent
    /// would.
    pub async fn report_web(&self, wec: &str, status: Option<&Value>) {
        self.env
            .report(
                &self.wds_name,
                wec,
                &self.binding,
                (&self.ns, "web"),
                status,
            )
            .await;
    }

    /// The scene's Binding sends `web` to `wecs` with `flags`.
    pub async fn bind_web(&self, wecs: &[&str], flags: Flags) {
        self.env
            .put_binding(
                &self.binding,
                binding_spec(
                    wecs,
                    vec![deployment_clause(&self.ns, "web", flags)],
                    vec![],
                ),
            )
            .await;
    }

    /// The WorkStatus name the status agent gives `web`'s report.
    pub fn web_report(&self) -> String {
        format!("appsv1-deployment-{}-web", self.ns)
    }
}
