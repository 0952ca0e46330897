//! Installing status-router as an operator would: the ITS's RBAC and the Secret with the ITS
//! kubeconfig, then `kubectl apply -k` of the test overlay of `config/default`.

use std::time::Duration;

use crate::cluster::{NAMESPACE, Node};

/// The Secret `config/default` mounts the ITS kubeconfig from, and its key.
pub const ITS_SECRET: &str = "status-router-its-kubeconfig";
pub const ITS_SECRET_KEY: &str = "kubeconfig";

pub async fn install(node: &Node) -> anyhow::Result<Vec<String>> {
    let ns = format!(
        "{{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{{\"name\":\"{NAMESPACE}\"}}}}"
    );
    // The ITS: the identity of the Secret's token (system:serviceaccount:kubestellar:status-router)
    // may read WorkStatuses, as docs/running-in-a-cluster.md says to set it up.
    node.apply(&node.its_kubeconfig, &ns)?;
    let its_rbac = std::fs::read_to_string(node.root.join("config/rbac/its.yaml"))?;
    node.apply(&node.its_kubeconfig, &its_rbac)?;
    // The hosting cluster (the WDS): the namespace and the Secret first, so the pods start with
    // their volume in place.
    node.apply(&node.wds_kubeconfig, &ns)?;
    let from_file = format!(
        "--from-file={ITS_SECRET_KEY}={}",
        node.its_secret_kubeconfig.display()
    );
    let secret = node.kubectl(&[
        "-n",
        NAMESPACE,
        "create",
        "secret",
        "generic",
        ITS_SECRET,
        &from_file,
        "--dry-run=client",
        "-o",
        "yaml",
    ])?;
    node.apply(&node.wds_kubeconfig, &secret)?;
    // NODE_TEST_OVERLAY: another overlay, for the mutations the test must fail on
    // (config/test/node-no-leader-election).
    let overlay = node
        .root
        .join(std::env::var("NODE_TEST_OVERLAY").unwrap_or_else(|_| "config/test/node".into()));
    node.kubectl(&["apply", "-k", &overlay.display().to_string()])?;
    node.wait_ready(2, Duration::from_secs(180)).await
}
