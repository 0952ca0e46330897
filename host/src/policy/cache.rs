//! Compiled policies cached on disk, so that a restart, or a swap back to a
//! module used before, skips compilation.
//!
//! An entry is keyed by the module's sha256 and by the engine's
//! `precompile_compatibility_hash` (wasmtime version and every setting that
//! affects code generation), so an artifact is only ever loaded by an engine
//! that could have produced it. Entries are written atomically (temp file and
//! rename); a corrupt or unreadable entry is ignored and recompiled.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// A directory of compiled policy components.
#[derive(Clone, Debug)]
pub struct CompiledCache {
    dir: PathBuf,
}

impl CompiledCache {
    /// A cache in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The cache's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, engine: &Engine, digest: &str) -> PathBuf {
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let compat = format!("{:x}", hasher.0.finalize());
        let module = digest.trim_start_matches("sha256:");
        self.dir.join(format!("{module}-{}.cwasm", &compat[..16]))
    }

    /// The compiled component, if cached.
    pub fn get(&self, engine: &Engine, digest: &str) -> Option<Component> {
        let path = self.path(engine, digest);
        if !path.exists() {
            return None;
        }
        // SAFETY: `deserialize_file` trusts its input to be wasmtime's own
        // output. Only this cache writes the directory, under a name bound to
        // the engine's compatibility hash, and wasmtime still checks the
        // artifact's header and version before using it.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring a bad compiled-policy cache entry");
                None
            }
        }
    }

    /// Stores a compiled component; failures only cost a later recompilation.
    pub fn put(&self, engine: &Engine, digest: &str, component: &Component) {
        let path = self.path(engine, digest);
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&self.dir)?;
            let bytes = component.serialize().map_err(std::io::Error::other)?;
            // Unique per process and write, so concurrent writers never share a temp file.
            static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, &path)
        };
        if let Err(e) = write() {
            tracing::warn!(path = %path.display(), error = %e, "cannot cache a compiled policy");
        }
    }
}

/// Feeds `Hash` into sha256, for a key that is stable across processes.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        unreachable!("only finalized as sha256")
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{DEFAULT_POLICY, PolicyEngine};

    #[test]
    fn a_second_load_is_served_from_the_cache_and_behaves_the_same() {
        let dir = std::env::temp_dir().join(format!("sr-cache-test-{}", std::process::id()));
        let cache = CompiledCache::new(&dir);
        let engine = PolicyEngine::new().unwrap();
        let (first, cached) = engine.load_cached(DEFAULT_POLICY, Some(&cache)).unwrap();
        assert!(!cached);
        let (second, cached) = engine.load_cached(DEFAULT_POLICY, Some(&cache)).unwrap();
        assert!(cached);
        assert_eq!(first.info(), second.info());
        let entries = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(entries, 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_corrupt_entry_is_recompiled() {
        let dir = std::env::temp_dir().join(format!("sr-cache-corrupt-{}", std::process::id()));
        let cache = CompiledCache::new(&dir);
        let engine = PolicyEngine::new().unwrap();
        engine.load_cached(DEFAULT_POLICY, Some(&cache)).unwrap();
        for entry in std::fs::read_dir(&dir).unwrap() {
            std::fs::write(entry.unwrap().path(), b"garbage").unwrap();
        }
        let (_, cached) = engine.load_cached(DEFAULT_POLICY, Some(&cache)).unwrap();
        assert!(!cached);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
