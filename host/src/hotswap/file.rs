//! A policy file watched for changes.
//!
//! The parent directory is watched, not the file: Kubernetes updates a
//! mounted ConfigMap or Secret by swapping the `..data` symlink in that
//! directory, and editors and `cp` rewrite files in place or replace them.
//! After the last event of a burst, the file is read only once its size and
//! modification time hold still, so a half-written file is never offered.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::Swapper;

/// Quiet time after the last event before the file is read. Short, since
/// `read_settled` also waits for the size and modification time to hold.
const DEBOUNCE: Duration = Duration::from_millis(5);

/// Watches `path` until the task is dropped, offering each new content.
pub async fn watch(path: PathBuf, swapper: Arc<Swapper>) -> Result<(), notify::Error> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Reads change nothing, and reading the file here opens it: counting
        // those events would re-read it for ever (and re-validate a rejected
        // module each time).
        if event.is_ok_and(|e| !is_read(&e.kind)) {
            let _ = tx.send(());
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    tracing::info!(path = %path.display(), "watching the policy file");
    while rx.recv().await.is_some() {
        // Let the burst of events end.
        while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {}
        match read_settled(&path).await {
            Ok(bytes) => {
                swapper
                    .offer(path.display().to_string(), bytes, own_pod())
                    .await
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the policy file; keeping the running policy")
            }
        }
    }
    Ok(())
}

/// Whether an event only tells that a file was opened, read or closed unwritten.
fn is_read(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Access(
            AccessKind::Open(_) | AccessKind::Read | AccessKind::Close(AccessMode::Read)
        )
    )
}

/// Reads the file once its size and modification time stop changing.
async fn read_settled(path: &Path) -> std::io::Result<Vec<u8>> {
    let stamp = |m: std::fs::Metadata| (m.len(), m.modified().ok());
    let mut before = stamp(tokio::fs::metadata(path).await?);
    loop {
        let bytes = tokio::fs::read(path).await?;
        let after = stamp(tokio::fs::metadata(path).await?);
        if after == before && after.0 == bytes.len() as u64 {
            return Ok(bytes);
        }
        before = after;
        tokio::time::sleep(DEBOUNCE).await;
    }
}

/// The controller's own Pod, from the downward API's `POD_NAME` and
/// `POD_NAMESPACE`, to record Events about file swaps on; `None` outside a Pod.
fn own_pod() -> Option<k8s_openapi::api::core::v1::ObjectReference> {
    Some(k8s_openapi::api::core::v1::ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: Some(std::env::var("POD_NAME").ok()?),
        namespace: Some(std::env::var("POD_NAMESPACE").ok()?),
        ..Default::default()
    })
}
