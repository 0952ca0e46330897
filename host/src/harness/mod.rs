//! The policy test harness: table-driven case files and a small API for
//! policy authors' `cargo test`.
//!
//! ```no_run
//! use status_router::harness::PolicyUnderTest;
//! use status_router::policy::{DecisionDoc, ObjectDoc, RequestDoc};
//!
//! let mut policy = PolicyUnderTest::load("target/policies/default.wasm");
//! let req = RequestDoc::new(ObjectDoc::deployment("default", "web")).singleton(["wec1"]);
//! assert_eq!(policy.decide(&req), DecisionDoc::singleton(["wec1"]));
//! policy.assert_case_file("tests/policies/conformance.yaml");
//! ```

mod cases;
pub mod collector;
mod runner;

pub use cases::{AggregateExpect, Case, CaseFileError, Check, parse_cases, read_case_file};
pub use runner::{Outcome, PolicyUnderTest, run_case};
