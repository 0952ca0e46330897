//! Helpers of the controller tests: the shared control plane with our CRDs,
//! a controller running in-process, and Bindings, WorkStatuses and workload
//! objects made the way KubeStellar's binding controller and status agent
//! make them.
//!
//! Every controller watches every Binding of the WDS, and decides for every
//! object a Binding names: a second controller running at the same time
//! would clear the objects of another test (it sees their Bindings but not
//! their WorkStatuses, which carry another `originWdsName`). So the tests that
//! run a controller on the shared control plane take [`Env::new`]'s lock and
//! run one at a time, and delete their Bindings and workload objects at the
//! end ([`Env::cleanup`]) so that the next test's controller does not work on
//! them.
//!
//! Each test binary compiles this module on its own and uses only part of it,
//! hence `allow(dead_code)`. The submodules, all re-exported here so that
//! `use common::*;` gives every helper:
//!
//! - [`env`]: the shared control plane ([`Env`]), the policies, a controller
//!   running in-process ([`Running`]);
//! - [`wait`]: polling until a probe holds, and settling;
//! - [`objects`]: workload objects and what a test observes on them;
//! - [`bindings`]: Bindings and their clauses;
//! - [`reports`]: WorkStatuses as the status agent writes them;
//! - [`scene`]: the start most tests share (a namespace, `web`, a Binding);
//! - [`swap`] and [`fleet`]: the hot-swap tests' logs, modules, files, and a
//!   controller serving a swappable policy over a fleet of Deployments.

#![allow(dead_code)]

pub mod bindings;
pub mod env;
pub mod fleet;
pub mod objects;
pub mod reports;
pub mod scene;
pub mod swap;
pub mod wait;

// A binary that uses nothing of a submodule would see its re-export as an
// unused import (as it sees the unused helpers as dead code).
#[allow(unused_imports)]
pub use bindings::*;
#[allow(unused_imports)]
pub use env::*;
#[allow(unused_imports)]
pub use fleet::*;
#[allow(unused_imports)]
pub use objects::*;
#[allow(unused_imports)]
pub use reports::*;
#[allow(unused_imports)]
pub use scene::*;
#[allow(unused_imports)]
pub use swap::*;
#[allow(unused_imports)]
pub use wait::*;
