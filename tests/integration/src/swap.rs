//! Helpers of the hot-swap tests: the policy modules and their validation, temp dirs and file replacement, a file watch the kernel
//! has provably set up, and waiting for a count of swaps.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use status_router::hotswap::{self, Swapper, Validator};
use status_router::policy::active::{ActiveModule, ActivePolicy};
use status_router::policy::{CompiledCache, PolicyEngine};
use tokio::task::JoinHandle;

use crate::{TIMEOUT, wait_for};

/// Waits that include a validation (a cranelift compilation of a component
/// in the test profile, on a possibly busy machine) get more time.
pub const SWAP_TIMEOUT: Duration = Duration::from_secs(60);

// ----- modules -----

/// The bytes of a component built by this crate's build script.
pub fn component(stem: &str) -> Vec<u8> {
    let path = crate::policy_path(stem);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The `sha256:<hex>` digest of a component, as the host computes it.
pub fn digest(stem: &str) -> String {
    static DIGESTS: std::sync::Mutex<BTreeMap<String, String>> =
        std::sync::Mutex::new(BTreeMap::new());
    if let Some(d) = DIGESTS.lock().unwrap().get(stem) {
        return d.clone();
    }
    let d = engine()
        .load(&component(stem))
        .unwrap_or_else(|e| panic!("load {stem}: {e}"))
        .info()
        .digest
        .clone();
    DIGESTS.lock().unwrap().insert(stem.into(), d.clone());
    d
}

pub fn engine() -> PolicyEngine {
    static ENGINE: OnceLock<PolicyEngine> = OnceLock::new();
    ENGINE
        .get_or_init(|| PolicyEngine::new().expect("policy engine"))
        .clone()
}

/// A validator as `status-router run` builds one.
pub fn new_validator(cache: Option<CompiledCache>, sha256: Option<String>) -> Validator {
    Validator::new(engine(), cache, sha256, None).expect("a validator")
}

/// The first module, validated as `status-router run` validates it.
pub fn initial(validator: &Validator, source: &str, bytes: &[u8]) -> ActiveModule {
    validator
        .validate(source, bytes)
        .unwrap_or_else(|e| panic!("the initial policy {source} is valid: {e}"))
}

/// Bytes that are certainly not WebAssembly.
pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut x = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut bytes: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    bytes[0] = 0xff;
    bytes
}

// ----- files -----

/// A temp dir of this test, removed at the end.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Self {
        let dir = std::env::temp_dir().join(testenv::unique_name(prefix));
        std::fs::create_dir_all(&dir).expect("create a temp dir");
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Replaces `path` atomically, as a deployment tool does: writes a temp file
/// next to it, then renames it over `path`.
pub fn replace_file(path: &Path, bytes: &[u8]) {
    let name = path.file_name().unwrap().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).expect("write the temp file");
    std::fs::rename(&tmp, path).expect("rename it into place");
}

/// Whether an inotify instance of this process watches `dir` (Linux's
/// `/proc/self/fdinfo` lists each watch with the watched inode, in hex).
pub fn inotify_watches(dir: &Path) -> bool {
    let needle = format!(
        "ino:{:x} ",
        std::fs::metadata(dir).expect("stat the dir").ino()
    );
    std::fs::read_dir("/proc/self/fdinfo")
        .expect("read /proc/self/fdinfo")
        .filter_map(Result::ok)
        .filter_map(|fd| std::fs::read_to_string(fd.path()).ok())
        .any(|info| {
            info.lines()
                .any(|l| l.starts_with("inotify ") && l.contains(&needle))
        })
}

/// A task aborted when dropped.
pub struct Task(pub JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts `hotswap::file::watch` on `path` and waits until the kernel
/// watches its directory, so that no change made afterwards is missed.
pub async fn watch_file(path: &Path, swapper: Arc<Swapper>) -> Task {
    let dir = path.parent().unwrap().to_path_buf();
    let owned = path.to_path_buf();
    let task = tokio::spawn(async move {
        hotswap::file::watch(owned, swapper)
            .await
            .expect("watch the policy file")
    });
    let what = format!("an inotify watch on {}", dir.display());
    wait_for(&what, TIMEOUT, || async {
        if inotify_watches(&dir) {
            Ok(())
        } else if task.is_finished() {
            Err("the watch task ended".into())
        } else {
            Err("none yet".into())
        }
    })
    .await;
    Task(task)
}

/// Waits until the swaps counted are `want` (accepted, rejected).
pub async fn wait_swaps(active: &ActivePolicy, want: (u64, u64)) {
    let what = format!("swaps (accepted, rejected) = {want:?}");
    wait_for(&what, SWAP_TIMEOUT, || async {
        let now = active.swaps();
        if now == want {
            Ok(())
        } else {
            Err(format!("{now:?}; policy status {}", active.status()))
        }
    })
    .await;
}
