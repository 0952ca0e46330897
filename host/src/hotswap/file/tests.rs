//! The watcher on a real directory (inotify): which events re-read the file.

use std::os::unix::fs::symlink;
use std::time::Duration;

use super::*;

/// Long enough for the events of a write to arrive and their burst to end
/// (the debounce is 5 ms): a watcher that wrongly counted them would have
/// read the file by then.
const SETTLE: Duration = Duration::from_millis(200);
/// How long a read the test expects may take on a loaded machine.
const EXPECT: Duration = Duration::from_secs(10);

async fn next_read(changes: &mut Changes) -> Vec<u8> {
    tokio::time::timeout(EXPECT, changes.next())
        .await
        .expect("a read of the policy file")
        .expect("the watcher is running")
        .expect("the file is readable")
}

/// Every read the watcher makes, as it makes it.
fn reads(mut changes: Changes) -> tokio::sync::mpsc::UnboundedReceiver<Vec<u8>> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(read) = changes.next().await {
            let _ = tx.send(read.expect("the file is readable"));
        }
    });
    rx
}

#[tokio::test]
async fn another_file_in_the_directory_does_not_reread_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.wasm");
    std::fs::write(&policy, b"old").unwrap();
    let mut reads = reads(Changes::start(&policy).unwrap());

    // A log file beside the policy, written line by line, as the controller's own log was.
    let log = dir.path().join("status-router.log");
    for line in 0..50 {
        let mut text = std::fs::read(&log).unwrap_or_default();
        text.extend_from_slice(format!("line {line}\n").as_bytes());
        std::fs::write(&log, text).unwrap();
    }
    std::fs::write(dir.path().join("policy.wasm.bak"), b"other").unwrap();
    tokio::time::sleep(SETTLE).await;
    assert!(
        reads.try_recv().is_err(),
        "the policy was re-read after writes of other files in its directory"
    );

    // The watcher does work: the policy's own change is read, once.
    std::fs::write(&policy, b"new").unwrap();
    let read = tokio::time::timeout(EXPECT, reads.recv()).await;
    assert_eq!(read.expect("a read").expect("the watcher runs"), b"new");
    tokio::time::sleep(SETTLE).await;
    assert!(reads.try_recv().is_err(), "a second read without a change");
}

#[tokio::test]
async fn a_rename_onto_the_file_rereads_it() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.wasm");
    std::fs::write(&policy, b"old").unwrap();
    let mut changes = Changes::start(&policy).unwrap();

    let staged = dir.path().join(".policy.wasm.tmp");
    std::fs::write(&staged, b"renamed").unwrap();
    std::fs::rename(&staged, &policy).unwrap();
    assert_eq!(next_read(&mut changes).await, b"renamed");
}

#[tokio::test]
async fn a_kubernetes_data_swap_rereads_the_file() {
    // The layout of a mounted ConfigMap: policy.wasm -> ..data/policy.wasm,
    // ..data -> a timestamped directory, swapped by renaming a new symlink onto ..data.
    let dir = tempfile::tempdir().unwrap();
    let version = |name: &str, content: &[u8]| {
        let path = dir.path().join(name);
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("policy.wasm"), content).unwrap();
    };
    version("..2026_12_01_10_00_00.1", b"first");
    symlink("..2026_12_01_10_00_00.1", dir.path().join("..data")).unwrap();
    let policy = dir.path().join("policy.wasm");
    symlink("..data/policy.wasm", &policy).unwrap();
    let mut changes = Changes::start(&policy).unwrap();

    version("..2026_12_01_10_05_00.2", b"second");
    symlink("..2026_12_01_10_05_00.2", dir.path().join("..data_tmp")).unwrap();
    std::fs::rename(dir.path().join("..data_tmp"), dir.path().join("..data")).unwrap();
    assert_eq!(next_read(&mut changes).await, b"second");
}

#[test]
fn which_events_concern_the_policy() {
    use notify::event::{CreateKind, DataChange, ModifyKind, RenameMode};
    let name = OsString::from("policy.wasm");
    let event = |kind, path: &str| Event::new(kind).add_path(PathBuf::from(path));
    let write = EventKind::Modify(ModifyKind::Data(DataChange::Any));
    assert!(concerns(&event(write, "/p/policy.wasm"), &name));
    assert!(!concerns(&event(write, "/p/status-router.log"), &name));
    assert!(concerns(
        &event(
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            "/p/..data"
        ),
        &name
    ));
    assert!(!concerns(
        &event(EventKind::Create(CreateKind::Folder), "/p/..2026_12_01"),
        &name
    ));
    assert!(!concerns(
        &event(EventKind::Access(AccessKind::Read), "/p/policy.wasm"),
        &name
    ));
    let overflow = Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan);
    assert!(concerns(&overflow, &name), "a lost event means read again");
}
