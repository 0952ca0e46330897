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
use super::limits::{INSTANTIATE_DEADLINE, Limits};

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
