//! The process-wide engine: one `wasmtime::Engine` configured for sandboxed
//! policies, and the epoch ticker that enforces call deadlines.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Config, Engine};

use super::PolicyError;
use super::instance::GuestState;

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

/// How often the engine's epoch advances; deadlines are whole ticks.
const EPOCH_TICK: Duration = Duration::from_millis(1);

/// The one policy engine of a process. Cheap to clone.
#[derive(Clone)]
pub struct PolicyEngine {
    pub(crate) inner: Arc<EngineInner>,
}

pub(crate) struct EngineInner {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<GuestState>,
    pub(crate) limits: Limits,
    // Kept for its Drop, which stops the thread once no policy needs it.
    _ticker: EpochTicker,
}

impl PolicyEngine {
    /// Creates the engine with the default [`Limits`].
    pub fn new() -> Result<Self, PolicyError> {
        Self::with_limits(Limits::default())
    }

    /// Creates the engine with the given sandbox limits.
    pub fn with_limits(limits: Limits) -> Result<Self, PolicyError> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        // Policies are small and swapped rarely; compile them well.
        config.cranelift_opt_level(wasmtime::OptLevel::Speed);
        let engine = Engine::new(&config).map_err(PolicyError::Engine)?;
        // Policies import nothing, so the linker stays empty: any import fails to link.
        let linker = Linker::new(&engine);
        let ticker = EpochTicker::start(engine.clone());
        Ok(Self {
            inner: Arc::new(EngineInner {
                engine,
                linker,
                limits,
                _ticker: ticker,
            }),
        })
    }

    /// The sandbox limits of every call.
    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// The underlying wasmtime engine.
    pub fn wasmtime(&self) -> &Engine {
        &self.inner.engine
    }
}

impl EngineInner {
    /// Deadline of one call in epoch ticks (rounded up, at least one).
    pub(crate) fn deadline_ticks(&self) -> u64 {
        ticks(self.limits.deadline)
    }

    /// Deadline of one instantiation in epoch ticks.
    pub(crate) fn instantiate_ticks(&self) -> u64 {
        ticks(self.limits.deadline.max(INSTANTIATE_DEADLINE))
    }
}

fn ticks(deadline: Duration) -> u64 {
    let ticks = deadline.as_micros().div_ceil(EPOCH_TICK.as_micros());
    ticks.max(1) as u64
}

/// A thread that advances the engine's epoch, stopped when the engine is dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("policy-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawn the policy epoch thread");
        Self {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}
