//! The errors of the policy layer. Load errors name what is wrong with the
//! component; call errors say which sandbox limit stopped the guest.

use std::time::Duration;

/// Why a policy could not be loaded or could not answer.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot create the policy engine: {0:#}")]
    Engine(wasmtime::Error),
    #[error("cannot read policy {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("not a WebAssembly component: {0}")]
    NotAComponent(String),
    #[error("the component imports {imports:?}; a policy must import nothing")]
    HasImports { imports: Vec<String> },
    #[error("the component does not implement {expected}: {reason}")]
    WorldMismatch { expected: String, reason: String },
    #[error("cannot compile the component: {0:#}")]
    Compile(wasmtime::Error),
    #[error("cannot instantiate the policy: {0:#}")]
    Instantiate(wasmtime::Error),
    #[error("the policy's {call} exceeded its deadline of {limit:?}")]
    Deadline { call: &'static str, limit: Duration },
    #[error("the policy's {call} exceeded its memory cap of {limit} bytes")]
    MemoryCap { call: &'static str, limit: usize },
    #[error("the policy's {call} trapped: {message}")]
    Trap { call: &'static str, message: String },
    #[error("the policy's aggregate returned a status that is not a JSON object: {0}")]
    BadAggregate(String),
}

impl PolicyError {
    /// Whether the error comes from running the guest (as opposed to loading it).
    pub fn is_call_failure(&self) -> bool {
        matches!(
            self,
            Self::Deadline { .. }
                | Self::MemoryCap { .. }
                | Self::Trap { .. }
                | Self::BadAggregate(_)
        )
    }
}
