//! A private `ControlPlane` (not the shared one) stops exactly its own processes and removes its
//! temp dir when dropped: the guarantee tests that need a fresh server rely on.

use std::time::Duration;

use testenv::ControlPlane;

#[test]
fn drop_stops_processes_and_removes_dir() {
    let cp = ControlPlane::start().expect("start a private control plane");
    let pids = cp.pids();
    let names: Vec<&str> = pids.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["etcd", "wds-apiserver", "its-apiserver"]);
    let dir = cp.dir().to_path_buf();
    assert!(cp.kubeconfig_path().is_file());
    assert!(cp.startup_time() > Duration::ZERO);

    drop(cp);
    assert!(!dir.exists(), "{} still exists", dir.display());
    for (name, pid) in pids {
        // Reaped by `stop`: the PID is gone, or reused by a process that is not ours.
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        assert!(
            !cmdline.contains(dir.to_str().expect("utf-8 temp dir")),
            "{name} (pid {pid}) still runs: {cmdline}"
        );
    }
}
