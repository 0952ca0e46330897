//! The controller (placeholder while written).
pub mod index;
pub mod queue;
pub mod sync;
pub mod workload;
