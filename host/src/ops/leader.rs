//! Leader election: of the replicas of one controller, only the one that
//! holds a `coordination.k8s.io/v1` Lease in the WDS writes.
//!
//! The Lease itself is driven by `kube-lease-manager` (acquire, renew and
//! release by server-side apply, which makes a concurrent acquire a conflict
//! rather than two holders). Around it this module adds what the crate
//! leaves to its user:
//!
//! - **A renew deadline of our own.** The crate renews in the background and
//!   says nothing while renewals fail. The lease task reads the Lease every
//!   retry period; a leader that has not seen its own renewal within the renew
//!   deadline (shorter than the Lease duration, so before anyone else may take
//!   it) stops at once with [`LeaderError::DeadlinePassed`].
//! - **Fencing.** The controller follows [`Role`]: its workers take work only
//!   while `Leading`, and it stops them the moment the role changes or the
//!   lease task ends (a panic drops the channel, which counts as a loss), so
//!   there is never a live replica that writes without leading or that
//!   nobody leads. The binary then exits non-zero and the pod restarts.
//! - **A standby that polls with a fresh view.** The crate caches the Lease
//!   until its expiry, so a standby would notice a released Lease only when
//!   the old one would have expired; each standby attempt here starts from a
//!   fresh read, every retry period, so a clean hand-over takes about one.
//! - **Release on shutdown**: [`Leadership::release`] clears the holder, so
//!   the standby takes over without waiting for the Lease to expire.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use kube_lease_manager::{LeaseCreateMode, LeaseManager, LeaseManagerError, LeaseParams};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::runtime::health::{Health, LeaseLiveness};
use crate::runtime::role::Role;

/// Where the Lease is, who we are, and the timings (client-go's names).
#[derive(Clone, Debug)]
pub struct LeaseSettings {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    /// How long a Lease holds after its last renewal.
    pub lease_duration: Duration,
    /// A leader that could not renew for this long stops.
    pub renew_deadline: Duration,
    /// How often the leader renews and a standby tries to acquire.
    pub retry_period: Duration,
}

impl LeaseSettings {
    fn check(&self) -> Result<(), LeaderError> {
        let whole = |d: Duration| d.subsec_nanos() == 0 && d.as_secs() > 0;
        let bad = |why: String| Err(LeaderError::Settings(why));
        if ![self.lease_duration, self.renew_deadline, self.retry_period]
            .into_iter()
            .all(whole)
        {
            return bad("the lease duration, renew deadline and retry period must be whole seconds of at least 1s (a Lease counts in seconds)".into());
        }
        if !(self.retry_period < self.renew_deadline && self.renew_deadline < self.lease_duration) {
            return bad(format!(
                "need retry period < renew deadline < lease duration, got {:?} / {:?} / {:?}",
                self.retry_period, self.renew_deadline, self.lease_duration
            ));
        }
        if self.identity.is_empty() || self.name.is_empty() || self.namespace.is_empty() {
            return bad("the Lease name, namespace and holder identity must not be empty".into());
        }
        Ok(())
    }

    fn lease(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// Why leading stopped, or could not start.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("invalid leader election settings: {0}")]
    Settings(String),
    #[error("the Lease {lease}: {source}")]
    Lease {
        lease: String,
        source: LeaseManagerError,
    },
    #[error("lost the Lease {lease} (now held by {holder:?})")]
    Lost {
        lease: String,
        holder: Option<String>,
    },
    #[error("could not renew the Lease {lease} within the renew deadline of {deadline:?}")]
    DeadlinePassed { lease: String, deadline: Duration },
    #[error("cannot release the Lease {lease}: {reason}")]
    Release { lease: String, reason: String },
    #[error("the lease task ended without a result (it panicked or was aborted)")]
    TaskEnded,
}

/// A running lease task and what it tells.
pub struct Leadership {
    role: watch::Receiver<Role>,
    release: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), LeaderError>>,
    master_status: Gauge,
    settings: LeaseSettings,
}

impl Leadership {
    /// Starts the lease task; liveness follows it through `health`.
    pub fn start(
        client: Client,
        settings: LeaseSettings,
        health: &Health,
    ) -> Result<Self, LeaderError> {
        settings.check()?;
        let (tx, role) = watch::channel(Role::Standby);
        let (release, released) = oneshot::channel();
        // A heartbeat at least every retry period; a read may take one more.
        let live = LeaseLiveness::new(settings.lease_duration);
        live.beat();
        health.watch_lease(live.clone());
        let master_status = Gauge::default();
        let task = tokio::spawn(lease_task(
            Task {
                leases: Api::namespaced(client.clone(), &settings.namespace),
                client,
                settings: settings.clone(),
                role: tx,
                live: live.clone(),
                master_status: master_status.clone(),
            },
            released,
        ));
        Ok(Self {
            role,
            release: Some(release),
            task,
            master_status,
            settings,
        })
    }

    /// Follows the role; closed once the lease task has ended.
    pub fn role(&self) -> watch::Receiver<Role> {
        self.role.clone()
    }

    pub fn is_leading(&self) -> bool {
        *self.role.borrow() == Role::Leading
    }

    /// Adds `leader_election_master_status{name}` to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry
            .sub_registry_with_label(("name".into(), self.settings.name.clone().into()))
            .register(
                "leader_election_master_status",
                "Whether this replica leads (1) or not (0), by Lease name",
                self.master_status.clone(),
            );
    }

    /// Releases the Lease (when held) and ends the lease task, waiting at
    /// most `timeout`.
    pub async fn release(mut self, timeout: Duration) -> Result<(), LeaderError> {
        if let Some(tx) = self.release.take() {
            let _ = tx.send(());
        }
        match tokio::time::timeout(timeout, &mut self.task).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(LeaderError::TaskEnded),
            Err(_) => {
                self.task.abort();
                Err(LeaderError::Release {
                    lease: self.settings.lease(),
                    reason: format!("not done within {timeout:?}"),
                })
            }
        }
    }

    /// Ends the lease task at once without releasing the Lease, as a crash
    /// would (for tests of failover).
    pub fn abort(self) {
        self.task.abort();
    }
}

struct Task {
    client: Client,
    leases: Api<Lease>,
    settings: LeaseSettings,
    role: watch::Sender<Role>,
    live: Arc<LeaseLiveness>,
    master_status: Gauge,
}

/// Marks the task ended however it ends, including by a panic.
struct EndGuard(Arc<LeaseLiveness>, Gauge);

impl Drop for EndGuard {
    fn drop(&mut self) {
        self.1.set(0);
        self.0.set_ended();
    }
}

type Changed<'a> = Pin<Box<dyn Future<Output = Result<bool, LeaseManagerError>> + Send + 'a>>;

async fn lease_task(t: Task, mut released: oneshot::Receiver<()>) -> Result<(), LeaderError> {
    let _guard = EndGuard(t.live.clone(), t.master_status.clone());
    let s = &t.settings;
    let params = LeaseParams::new(
        s.identity.clone(),
        s.lease_duration.as_secs(),
        // The crate renews `grace` before expiry: every retry period.
        (s.lease_duration - s.retry_period).as_secs(),
    );
    tracing::info!(lease = %s.lease(), identity = %s.identity, "standing by for the Lease");
    let manager = loop {
        t.live.beat();
        let round = tokio::time::Instant::now() + s.retry_period;
        tokio::select! {
            biased;
            _ = &mut released => {
                t.role.send_replace(Role::Stopped("released while standing by".into()));
                return Ok(());
            }
            attempt = tokio::time::timeout_at(round, acquire(&t, &params)) => match attempt {
                Ok(Ok(Some(manager))) => break manager,
                Ok(Ok(None)) | Err(_) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot acquire the Lease; retrying"),
            },
        }
        // Poll: one attempt per retry period (an attempt that waited on a held
        // Lease has used the period already).
        tokio::select! {
            _ = &mut released => {
                t.role.send_replace(Role::Stopped("released while standing by".into()));
                return Ok(());
            }
            () = tokio::time::sleep_until(round) => {}
        }
    };
    lead(&t, &manager, released).await
}

/// One standby attempt from a fresh read of the Lease: `Some` once held.
async fn acquire(t: &Task, params: &LeaseParams) -> Result<Option<LeaseManager>, LeaderError> {
    let s = &t.settings;
    let wrap = |source| LeaderError::Lease {
        lease: s.lease(),
        source,
    };
    let manager = LeaseManager::new(
        t.client.clone(),
        &s.name,
        &s.namespace,
        params.clone(),
        LeaseCreateMode::AutoCreate,
    )
    .await
    .map_err(wrap)?;
    // Completes when we hold it; waits while someone else does.
    Ok(manager.changed().await.map_err(wrap)?.then_some(manager))
}

async fn lead(
    t: &Task,
    manager: &LeaseManager,
    mut released: oneshot::Receiver<()>,
) -> Result<(), LeaderError> {
    let s = &t.settings;
    let mut valid_until = Instant::now() + s.renew_deadline;
    t.live.set_leading_until(Some(valid_until));
    t.master_status.set(1);
    t.role.send_replace(Role::Leading);
    tracing::info!(lease = %s.lease(), identity = %s.identity, "leading");
    let stop = |reason: &LeaderError| {
        t.master_status.set(0);
        t.live.set_leading_until(None);
        t.role.send_replace(Role::Stopped(reason.to_string()));
        tracing::error!(lease = %s.lease(), error = %reason, "stopped leading");
    };
    let mut changed: Changed<'_> = Box::pin(manager.changed());
    let mut check = tokio::time::interval(s.retry_period);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = &mut released => {
                drop(changed);
                t.master_status.set(0);
                t.live.set_leading_until(None);
                t.role.send_replace(Role::Stopped("released".into()));
                return match tokio::time::timeout(s.renew_deadline, manager.release()).await {
                    Ok(Ok(())) => {
                        tracing::info!(lease = %s.lease(), "Lease released");
                        Ok(())
                    }
                    Ok(Err(e)) => Err(LeaderError::Release { lease: s.lease(), reason: e.to_string() }),
                    Err(_) => Err(LeaderError::Release { lease: s.lease(), reason: "timed out".into() }),
                };
            }
            result = &mut changed => match result {
                Ok(false) => {
                    let e = LeaderError::Lost { lease: s.lease(), holder: None };
                    stop(&e);
                    return Err(e);
                }
                Ok(true) => changed = Box::pin(manager.changed()),
                Err(e) => {
                    tracing::warn!(lease = %s.lease(), error = %e, "cannot renew the Lease; retrying");
                    let retry = s.retry_period;
                    // Backoff: the next renewal attempt after a retry period.
                    changed = Box::pin(async move {
                        tokio::time::sleep(retry).await;
                        manager.changed().await
                    });
                }
            },
            _ = check.tick() => {
                t.live.beat();
                match tokio::time::timeout(s.retry_period, t.leases.get(&s.name)).await {
                    Ok(Ok(lease)) => {
                        let spec = lease.spec.unwrap_or_default();
                        if spec.holder_identity.as_deref() != Some(s.identity.as_str()) {
                            let e = LeaderError::Lost { lease: s.lease(), holder: spec.holder_identity };
                            stop(&e);
                            return Err(e);
                        }
                        if let Some(renewed) = spec.renew_time.map(|t| renewed_instant(SystemTime::from(t.0))) {
                            valid_until = valid_until.max(renewed + s.renew_deadline);
                        }
                    }
                    Ok(Err(e)) => tracing::warn!(lease = %s.lease(), error = %e, "cannot read the Lease"),
                    Err(_) => tracing::warn!(lease = %s.lease(), "reading the Lease timed out"),
                }
                if Instant::now() > valid_until {
                    let e = LeaderError::DeadlinePassed { lease: s.lease(), deadline: s.renew_deadline };
                    stop(&e);
                    return Err(e);
                }
                t.live.set_leading_until(Some(valid_until));
            }
        }
    }
}

/// The monotonic instant of a wall-clock time in the past (the renewal
/// time we wrote, with our own clock).
fn renewed_instant(at: SystemTime) -> Instant {
    let ago = SystemTime::now().duration_since(at).unwrap_or_default();
    Instant::now().checked_sub(ago).unwrap_or_else(Instant::now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(duration: u64, deadline: u64, retry: u64) -> LeaseSettings {
        LeaseSettings {
            namespace: "kubestellar".into(),
            name: "status-router-wds1".into(),
            identity: "pod-a".into(),
            lease_duration: Duration::from_secs(duration),
            renew_deadline: Duration::from_secs(deadline),
            retry_period: Duration::from_secs(retry),
        }
    }

    #[test]
    fn the_timings_must_nest_and_be_whole_seconds() {
        settings(15, 10, 2).check().unwrap();
        let e = settings(15, 15, 2).check().unwrap_err().to_string();
        assert!(
            e.contains("retry period < renew deadline < lease duration"),
            "{e}"
        );
        assert!(settings(15, 10, 10).check().is_err());
        let mut half = settings(15, 10, 2);
        half.retry_period = Duration::from_millis(1500);
        let e = half.check().unwrap_err().to_string();
        assert!(e.contains("whole seconds"), "{e}");
        let mut nobody = settings(15, 10, 2);
        nobody.identity.clear();
        assert!(nobody.check().is_err());
    }

    #[test]
    fn a_renewal_in_the_past_maps_to_an_instant_as_far_back() {
        let at = SystemTime::now() - Duration::from_secs(3);
        let ago = renewed_instant(at).elapsed();
        assert!(
            ago >= Duration::from_secs(3) && ago < Duration::from_secs(4),
            "{ago:?}"
        );
    }
}
