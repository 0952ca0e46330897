//! The rule for every call to an API server: bounded in time, classified as
//! transient (retried soon) or permanent (retried with backoff), and written
//! under one field manager.

use std::future::Future;
use std::time::Duration;

/// The field manager of every write.
pub const FIELD_MANAGER: &str = "status-router";

/// How long one read, write or discovery may take. kube's client has no read
/// timeout, so a request to an API server that is stopped (SIGSTOP, a hung
/// node) would hold its caller until the server resumes; a timed-out call is
/// a transient failure, retried soon (a patch without resourceVersion is safe
/// to repeat).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A client for one space, without kube's own retry layer. That layer
/// retries a 429, 503 or 504 up to 15 times inside one request, honouring the
/// server's `Retry-After` and backing off towards 1000 s: a watch restarted
/// against an API server that was still starting slept 5 s in it (a 503 with
/// `Retry-After: 5`) and caught up 5 s after its server was ready. The
/// controller retries by its own rules instead ([`crate::runtime::watch::WatchBackoff`],
/// the queue's error policy), which are bounded, logged and counted.
pub fn client(mut config: kube::Config) -> Result<kube::Client, kube::Error> {
    config.default_retry = false;
    kube::Client::try_from(config)
}

/// A call that failed or did not answer in time.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Api(#[from] kube::Error),
    #[error("no answer within {REQUEST_TIMEOUT:?}")]
    Timeout,
}

impl CallError {
    /// Whether the failure may go away by itself (see [`transient`]).
    pub fn is_transient(&self) -> bool {
        match self {
            CallError::Api(error) => transient(error),
            CallError::Timeout => true,
        }
    }
}

/// Runs one API call under [`REQUEST_TIMEOUT`].
pub async fn bounded<T>(
    call: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, CallError> {
    match tokio::time::timeout(REQUEST_TIMEOUT, call).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(CallError::Timeout),
    }
}

/// Whether `error` may go away by itself: the server is down, restarting or
/// overloaded, rather than a refusal that only a change of inputs can fix.
pub fn transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code >= 500 || matches!(status.code, 408 | 429),
        // Connection refused or reset, TLS, a body cut short: the server went away.
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_call_that_never_answers_is_a_transient_timeout() {
        let never = std::future::pending::<Result<(), kube::Error>>();
        let error = bounded(never).await.unwrap_err();
        assert!(matches!(error, CallError::Timeout));
        assert!(error.is_transient());
    }

    #[test]
    fn server_errors_are_transient_and_refusals_are_not() {
        let status = |code| {
            kube::Error::Api(Box::new(kube::core::Status {
                code,
                ..Default::default()
            }))
        };
        for code in [500, 503, 408, 429] {
            assert!(transient(&status(code)), "{code}");
        }
        for code in [400, 403, 404, 409, 422] {
            assert!(!transient(&status(code)), "{code}");
        }
    }
}
