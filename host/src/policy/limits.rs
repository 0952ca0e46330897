//! What a policy call may use: its deadline, its memory, how long an
//! instance is reused. The engine enforces them; instances recycle by them.

use std::time::Duration;

/// Sandbox limits applied to every policy call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock budget of one call, enforced by epoch interruption.
    pub deadline: Duration,
    /// Largest linear memory a policy instance may grow to, in bytes.
    pub memory: usize,
    /// A reused instance is replaced by a fresh one after this many calls,
    /// and whenever its memory passes [`RECYCLE_AT`] of the cap. Garbage-collected
    /// guests (Python, JavaScript) and leaky ones grow over millions of calls;
    /// a fresh instance costs 0.1-1 ms, so every 100 000 calls is free.
    pub recycle_after_calls: u64,
}

/// The share of the memory cap past which a reused instance is replaced
/// after its call, before it can hit the cap: (numerator, denominator).
pub const RECYCLE_AT: (usize, usize) = (3, 4);

/// The deadline of an instantiation (the guest's start functions run under
/// it): far above a call's, since a 18 MB Python component takes about 1 ms
/// and a busy node or a debug build many times that, yet still bounded.
pub const INSTANTIATE_DEADLINE: Duration = Duration::from_secs(1);

impl Default for Limits {
    fn default() -> Self {
        Self {
            deadline: Duration::from_millis(10),
            memory: 32 << 20,
            recycle_after_calls: 100_000,
        }
    }
}
