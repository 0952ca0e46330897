//! The integration tests, one binary: every module below is one subject, and all of them share
//! the library `integration_tests` (compiled once) and its one runtime attribute,
//! [`integration_tests::async_test`].
//!
//! Run one subject with a filter on its module: `cargo test -p integration-tests --test it --
//! hotswap_file::`. The controller tests share one control plane and take turns on it
//! ([`integration_tests::Env`]); the others start private control planes, or none.

mod chaos;
mod combined_status;
mod differential;
mod executing_count_and_writes;
mod hostile;
mod hotswap_configmap_and_cache;
mod hotswap_file;
mod hotswap_languages;
mod kind_aggregation;
mod kubeflex;
mod kubestellar_judge;
mod kubestellar_scenarios;
mod leader_election;
mod manifests;
mod policies;
mod rbac;
mod rejected_writes;
mod sandbox;
mod sandbox_languages;
mod scale_and_crds;
mod start_up;
mod watch_recovery;
mod write_rules;
