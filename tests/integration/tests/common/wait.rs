//! Waiting for the controller: polling until a probe holds, and letting the
//! controller settle before checking that nothing changed.

use std::future::Future;
use std::time::{Duration, Instant};

use super::{GRACE, Running, TIMEOUT};

/// Polls `probe` every 100 ms until it returns `Ok`, or fails after
/// `timeout` showing what it last returned.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last) if start.elapsed() >= timeout => {
                panic!("timed out after {timeout:?} waiting for {what}; last observed: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Waits until the controller has run at least one more reconcile than
/// `since`, then for [`GRACE`], so that "nothing changed" is checked after
/// the controller has had its chance.
pub async fn settle(running: &Running, since: u64) {
    wait_for("the controller to reconcile", TIMEOUT, || async {
        let now = running.reconciles();
        if now > since {
            Ok(())
        } else {
            Err(format!("reconciles = {now}"))
        }
    })
    .await;
    tokio::time::sleep(GRACE).await;
}
