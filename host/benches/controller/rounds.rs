//! Phases D and E, repeated: the bare loop and the controller's catch-up,
//! interleaved round by round, so that their ratio compares figures taken
//! minutes apart on the same control plane and a single noisy round does not
//! decide the verdict (the run reports the medians).

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, PatchParams};
use status_router::controller::wds::replace_status;
use status_router::kubestellar::WorkStatus;

use crate::ctl::{Counters, Ctl};
use crate::objects::{deployment_status, name, report, run_bounded};
use crate::procs::{CpuReport, ProcSet};
use crate::tracker::Tracker;
use crate::{NAMESPACE, Options};

/// What the phases of one size share.
pub struct Bench<'a> {
    pub opts: &'a Options,
    pub plane: &'a testenv::ControlPlane,
    pub wds: Client,
    pub its: Client,
    pub statuses: Api<WorkStatus>,
    pub tracker: &'a Tracker,
    /// The control plane and the bench, without the controller.
    pub procs: ProcSet,
    pub n: usize,
}

#[derive(Clone, Debug, Default)]
pub struct BareRound {
    /// Writes acknowledged per second.
    pub rate: f64,
    /// Writes per second as this process's watch saw them, from the first
    /// write sent to the last seen.
    pub seen_rate: f64,
    /// Writes per second from the first to the last seen on the watch: the
    /// way E is measured, so `E / this` is the ratio with no ramp-up in D.
    pub first_to_last_rate: f64,
    pub span: Duration,
    pub cpu: CpuReport,
}

#[derive(Clone, Debug, Default)]
pub struct CatchUpRound {
    /// Writes per second, from the first to the last status seen.
    pub rate: f64,
    pub from_start: Duration,
    pub counters: Counters,
    pub hwm_kib: Option<u64>,
    pub cpu: CpuReport,
}

/// The median of some rates (the mean of the middle two for an even count).
pub fn median(mut rates: Vec<f64>) -> f64 {
    rates.sort_by(f64::total_cmp);
    match rates.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => rates[n / 2],
        n => (rates[n / 2 - 1] + rates[n / 2]) / 2.0,
    }
}

impl Bench<'_> {
    /// D: the controller is stopped; the bench writes `value` into every
    /// Deployment's status with the controller's patch and concurrency.
    /// `watched` (D') keeps a second watch of the Deployments open while it
    /// writes, listed before the clock starts: the WDS then sends every write
    /// to two watchers, as it does in E, where the controller watches too.
    pub async fn bare_round(
        &self,
        round: usize,
        value: i64,
        watched: bool,
    ) -> anyhow::Result<BareRound> {
        let n = self.n;
        let ar = ApiResource::erase::<Deployment>(&());
        let dynamic: Api<DynamicObject> = Api::namespaced_with(self.wds.clone(), NAMESPACE, &ar);
        let second_watch = if watched {
            Some(second_watch(dynamic.clone()).await?)
        } else {
            None
        };
        let label = if watched { "D'" } else { "D" };
        self.tracker.arm(value, 0..n);
        let params = PatchParams {
            field_manager: Some("status-router-bench".into()),
            ..PatchParams::default()
        };
        let cpu0 = self.procs.sample();
        let first_sent = Instant::now();
        run_bounded(n, self.opts.workers, "bare status patches", |i| {
            let api = dynamic.clone();
            let params = params.clone();
            async move {
                // The very patch the controller sends.
                let patch = replace_status(deployment_status(value));
                api.patch_status(&name(i), &params, &patch).await?;
                Ok(())
            }
        })
        .await?;
        let span = first_sent.elapsed();
        let cpu = self.procs.sample().since(&cpu0).report(span);
        self.tracker.wait_all("D bare (watch)", None).await?;
        if let Some(task) = second_watch {
            task.abort();
        }
        let (first_seen, last_seen) = self.tracker.seen_span().expect("n > 0");
        let r = BareRound {
            rate: n as f64 / span.as_secs_f64(),
            seen_rate: n as f64 / (last_seen - first_sent).as_secs_f64(),
            first_to_last_rate: n as f64 / (last_seen - first_seen).as_secs_f64().max(1e-6),
            span,
            cpu,
        };
        let watches = if watched { ", a second watch open" } else { "" };
        println!(
            "{label}{round} bare loop ({} in flight{watches}): {:.0} writes/s acknowledged ({:.1?}), {:.0}/s seen on the watch, {:.0}/s from the first to the last seen",
            self.opts.workers, r.rate, r.span, r.seen_rate, r.first_to_last_rate
        );
        println!("  CPU during {label}{round}: {}", r.cpu);
        Ok(r)
    }

    /// E: with the controller stopped, every WorkStatus reports `value`; then a
    /// fresh controller starts and the bench times how fast the Deployments follow.
    pub async fn catch_up_round(&self, round: usize, value: i64) -> anyhow::Result<CatchUpRound> {
        let n = self.n;
        run_bounded(
            n,
            self.opts.concurrency,
            "update WorkStatuses (controller down)",
            |i| {
                let api = self.statuses.clone();
                async move { report(&api, i, value).await }
            },
        )
        .await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        self.tracker.arm(value, 0..n);
        let t = Instant::now();
        let ctl = Ctl::start(self.opts, self.plane, self.wds.clone(), self.its.clone()).await?;
        let procs = self.procs.with(ctl.pid(), "controller");
        let cpu0 = procs.sample();
        self.tracker.wait_all("E catch-up", Some(&ctl)).await?;
        let from_start = t.elapsed();
        let (first, last) = self.tracker.seen_span().expect("n > 0");
        let cpu = procs.sample().since(&cpu0).report(from_start);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let r = CatchUpRound {
            rate: n as f64 / (last - first).as_secs_f64().max(1e-6),
            from_start,
            counters: ctl.counters().await?,
            hwm_kib: ctl.vm_hwm_kib(),
            cpu,
        };
        ctl.stop().await;
        println!(
            "E{round} catch-up: {n} statuses {:.1?} after the controller's start, {:.0} writes/s from the first to the last; {}",
            r.from_start, r.rate, r.counters
        );
        println!("  CPU during E{round}: {}", r.cpu);
        Ok(r)
    }
}

/// A watch of the Deployments that reads every event and does nothing with
/// it, open once its initial list is done.
async fn second_watch(api: Api<DynamicObject>) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    use futures::StreamExt;
    use kube::runtime::watcher::{self, Event};
    let (listed, listed_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut listed = Some(listed);
        let mut events = watcher::watcher(api, watcher::Config::default()).boxed();
        while let Some(event) = events.next().await {
            if let Ok(Event::InitDone) = event
                && let Some(listed) = listed.take()
            {
                let _ = listed.send(());
            }
        }
    });
    tokio::time::timeout(STALL_LIST, listed_rx)
        .await
        .map_err(|_| anyhow::anyhow!("the second watch did not list within {STALL_LIST:?}"))??;
    Ok(task)
}

/// How long the second watch's list of N Deployments may take.
const STALL_LIST: Duration = Duration::from_secs(600);
