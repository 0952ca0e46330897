//! The resourceVersions of the controller's own writes, so that a watch event
//! of an object state that a later write of ours has already replaced does
//! not put that older state back into the cache.
//!
//! One reconcile can write an object up to three times (a label added, the
//! status, a label removed), and the watch delivers an event for each, after
//! the write responses. The event of the first write then arrives when the
//! cache already holds the response of the last: caching it would make the
//! next reconcile read the status from before our write and write it again,
//! a needless write (and, for a status the server normalises, one that
//! repeats). The events are recognised by their resourceVersion, which is
//! compared only for equality, as the API conventions require.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::controller::index::ObjectKey;

/// How many of an object's own writes are remembered: more than one
/// reconcile's writes, so that late events of the previous one are known too.
const KEPT: usize = 8;

/// The resourceVersions of our own recent writes, per object, newest last.
#[derive(Debug, Default)]
pub struct OwnWrites {
    /// Boxed: 16 bytes a version, not 24, for each of up to `KEPT` writes
    /// of every object written.
    versions: Mutex<HashMap<ObjectKey, VecDeque<Box<str>>>>,
}

impl OwnWrites {
    /// Records the resourceVersion a write of ours produced.
    pub fn record(&self, key: &ObjectKey, version: &str) {
        let mut versions = self.versions.lock().expect("own writes lock");
        let list = versions.entry(key.clone()).or_default();
        if list.back().is_some_and(|last| **last == *version) {
            // A write the server found to change nothing keeps the version.
            return;
        }
        if list.len() == KEPT {
            list.pop_front();
        }
        list.push_back(version.into());
    }

    /// Whether `version` is an older state of ours than our latest write.
    pub fn is_superseded(&self, key: &ObjectKey, version: &str) -> bool {
        let versions = self.versions.lock().expect("own writes lock");
        versions.get(key).is_some_and(|list| {
            list.iter()
                .position(|v| **v == *version)
                .is_some_and(|i| i + 1 < list.len())
        })
    }

    /// Forgets the objects `keep` rejects.
    pub fn retain(&self, keep: impl Fn(&ObjectKey) -> bool) {
        self.versions
            .lock()
            .expect("own writes lock")
            .retain(|k, _| keep(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> ObjectKey {
        ObjectKey::new(
            "apps".into(),
            "deployments".into(),
            "default".into(),
            name.into(),
        )
    }

    #[test]
    fn only_an_older_write_of_ours_is_superseded() {
        let writes = OwnWrites::default();
        writes.record(&key("web"), "10");
        assert!(!writes.is_superseded(&key("web"), "10"), "the latest");
        writes.record(&key("web"), "11");
        assert!(writes.is_superseded(&key("web"), "10"));
        assert!(!writes.is_superseded(&key("web"), "11"));
        assert!(!writes.is_superseded(&key("web"), "12"), "not ours");
        assert!(!writes.is_superseded(&key("other"), "10"));
        writes.retain(|_| false);
        assert!(!writes.is_superseded(&key("web"), "10"));
    }

    #[test]
    fn only_the_last_few_are_kept() {
        let writes = OwnWrites::default();
        for v in 0..=KEPT {
            writes.record(&key("web"), &v.to_string());
        }
        assert!(!writes.is_superseded(&key("web"), "0"), "forgotten");
        assert!(writes.is_superseded(&key("web"), "1"));
    }
}
