//! Running as replicas in a cluster: leader election ([`leader`]) and the
//! HTTP endpoints for probes, metrics and the policy ([`serve`]).

pub mod leader;
pub mod serve;
