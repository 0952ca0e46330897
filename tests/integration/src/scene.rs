//! The start most controller tests share: a WDS name of their own, a
//! namespace with a Deployment `web`, and a Binding name; then WECs that
//! report `web`'s status and a Binding that sends it to them.

use serde_json::Value;

use crate::{Env, Flags, Target, binding_spec, create_deployment, deployment_clause};

/// One test's WDS name, namespace, Binding name and Deployment `web`.
pub struct Scene {
    pub wds_name: String,
    pub ns: String,
    pub binding: String,
    pub web: Target,
}

impl Env {
    /// A fresh scene; `binding` prefixes the Binding's name.
    pub async fn scene(&self, binding: &str) -> Scene {
        let wds_name = testenv::unique_name("wds");
        let ns = self.namespace().await;
        let binding = testenv::unique_name(binding);
        let web = create_deployment(&self.wds, &ns, "web").await;
        Scene {
            wds_name,
            ns,
            binding,
            web,
        }
    }
}

impl Scene {
    /// `wec` reports `status` for `web` (through the scene's Binding), as
    /// the status agent would.
    pub async fn report_web(&self, env: &Env, wec: &str, status: Option<&Value>) {
        env.report(
            &self.wds_name,
            wec,
            &self.binding,
            (&self.ns, "web"),
            status,
        )
        .await;
    }

    /// The scene's Binding sends `web` to `wecs` with `flags`.
    pub async fn bind_web(&self, env: &Env, wecs: &[&str], flags: Flags) {
        env.put_binding(
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
