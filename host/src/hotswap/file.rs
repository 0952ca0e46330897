//! A policy file watched for changes.
//!
//! The parent directory is watched, not the file: Kubernetes updates a
//! mounted ConfigMap or Secret by swapping the `..data` symlink in that
//! directory, and editors and `cp` rewrite files in place or replace them.
//! Only events that can change what the path holds count: the file itself
//! (written, created, removed, renamed onto), the `..data` symlink, or an
//! overflow that asks for a rescan. Other files in the directory, such as a
//! log written beside the policy, are none of our business: reading and
//! hashing the policy on each of their writes would cost a read per log
//! line, and a debug line about the unchanged policy would feed the loop.
//! After the last event of a burst, the file is read only once its size and
//! modification time hold still, so a half-written file is never offered.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::Swapper;

/// Quiet time after the last event before the file is read. Short, since
/// `read_settled` also waits for the size and modification time to hold.
const DEBOUNCE: Duration = Duration::from_millis(5);

/// The symlink through which Kubernetes swaps a mounted volume's files.
const KUBERNETES_DATA_LINK: &str = "..data";

/// Watches `path` until the task is dropped, offering each new content.
pub async fn watch(path: PathBuf, swapper: Arc<Swapper>) -> Result<(), notify::Error> {
    let mut changes = Changes::start(&path)?;
    tracing::info!(path = %path.display(), "watching the policy file");
    while let Some(read) = changes.next().await {
        match read {
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

/// The policy file's content, read anew after each burst of events that can
/// have changed it.
pub struct Changes {
    path: PathBuf,
    events: mpsc::UnboundedReceiver<()>,
    _watcher: RecommendedWatcher,
}

impl Changes {
    /// Starts watching the directory of `path`.
    pub fn start(path: &Path) -> Result<Self, notify::Error> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let file_name = path
            .file_name()
            .map(OsStr::to_os_string)
            .ok_or_else(|| notify::Error::generic(&format!("{} names no file", path.display())))?;
        let (tx, events) = mpsc::unbounded_channel();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
            // An error of the watcher itself may mean lost events: read again.
            if event.is_err() || event.is_ok_and(|e| concerns(&e, &file_name)) {
                let _ = tx.send(());
            }
        })?;
        watcher.watch(&dir, RecursiveMode::NonRecursive)?;
        Ok(Self {
            path: path.to_path_buf(),
            events,
            _watcher: watcher,
        })
    }

    /// Waits for the next burst of relevant events to end, then reads the
    /// file. `None` once the watcher is gone.
    pub async fn next(&mut self) -> Option<std::io::Result<Vec<u8>>> {
        self.events.recv().await?;
        while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, self.events.recv()).await {}
        Some(read_settled(&self.path).await)
    }
}

/// Whether `event` in the watched directory can change what the policy
/// file named `file_name` holds.
fn concerns(event: &Event, file_name: &OsString) -> bool {
    if event.need_rescan() {
        return true;
    }
    // Reads change nothing, and reading the file opens it: counting those
    // events would re-read it for ever.
    if is_read(&event.kind) {
        return false;
    }
    event.paths.iter().any(|p| {
        p.file_name()
            .is_some_and(|name| name == file_name.as_os_str() || name == KUBERNETES_DATA_LINK)
    })
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

#[cfg(test)]
mod tests;
