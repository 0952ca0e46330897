//! What the controllers of this process run on, in kube-runtime's spirit:
//! the bounded API call ([`api`]), watch restarts ([`watch`]), the workqueue
//! ([`queue`]) and the one reconcile contract ([`reconcile`]), the metrics
//! registry ([`metrics`]), the state the probes read ([`health`]) and the
//! leadership signal ([`role`]). Nothing here knows a status rule or a
//! policy; the controller, hot swap and operations build on it.

pub mod api;
pub mod health;
pub mod metrics;
pub mod queue;
pub mod reconcile;
pub mod role;
pub mod watch;
