//! A policy instance reused across calls by one worker, with the sandbox
//! limits applied to each call.
//!
//! Instantiating a component costs microseconds while a call costs hundreds of
//! nanoseconds, so a worker keeps its instance. A trap leaves a component
//! instance unusable, so after any failed call the instance is dropped and the
//! next call starts from a fresh one.
//!
//! Large guests (CPython, QuickJS) and leaky ones grow their memory over
//! millions of calls: a reused instance is replaced after
//! [`Limits::recycle_after_calls`](super::Limits) calls, or after a call that
//! leaves its memory past [`RECYCLE_AT`] of the cap, and a call that hits the
//! cap on a reused instance is tried once more on a fresh one, so memory that
//! earlier calls left behind never fails a call.

use wasmtime::{ResourceLimiter, Store, Trap};

use super::limits::RECYCLE_AT;
use super::{Decision, Policy, PolicyError, ReportedStatus, Request, StatusPolicy, WorkloadRef};

/// The store data of a policy instance: only the memory accounting.
pub struct GuestState {
    limiter: MemoryCap,
}

/// Denies memory growth past the cap and remembers that it did, so that the
/// trap that follows is reported as the cap and not as a guest bug. Counts
/// the bytes of every linear memory of the instance, to recycle it in time.
struct MemoryCap {
    cap: usize,
    denied: bool,
    used: usize,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.cap;
        self.denied |= !allowed;
        if allowed {
            self.used += desired.saturating_sub(current);
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// A live instance and the calls it has served.
struct Live {
    store: Store<GuestState>,
    bindings: StatusPolicy,
    calls: u64,
}

/// One worker's instance of a policy.
pub struct PolicyInstance {
    policy: Policy,
    live: Option<Live>,
    recycled: u64,
    observer: Option<CallObserver>,
}

/// Told the time of each call (`"decide"` or `"aggregate"`), failed or not:
/// the controller's histogram of policy call time.
pub type CallObserver = Box<dyn Fn(&'static str, std::time::Duration) + Send + Sync>;

impl PolicyInstance {
    /// A worker's handle on `policy`; the instance is created on the first call.
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            live: None,
            recycled: 0,
            observer: None,
        }
    }

    /// The same instance, telling `observer` how long each call took.
    pub fn observed(mut self, observer: CallObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// How many times a healthy instance was replaced by a fresh one, after
    /// [`Limits::recycle_after_calls`](super::Limits) calls or near the memory cap.
    pub fn recycled(&self) -> u64 {
        self.recycled
    }

    /// The bytes of linear memory of the live instance, if there is one.
    pub fn memory_used(&self) -> Option<usize> {
        self.live.as_ref().map(|l| l.store.data().limiter.used)
    }

    /// The policy this instance runs.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Asks the policy which handler applies to `req`.
    pub fn decide(&mut self, req: &Request) -> Result<Decision, PolicyError> {
        self.call("decide", |store, bindings| {
            bindings
                .kubestellar_status_policy_policy()
                .call_decide(store, req)
        })
    }

    /// Asks the policy to aggregate the statuses reported by several WECs.
    ///
    /// The outer error is a failed call; the inner one is the policy's own
    /// refusal to aggregate these reports. On success the status is a JSON object.
    pub fn aggregate(
        &mut self,
        object: &WorkloadRef,
        reported: &[ReportedStatus],
    ) -> Result<Result<serde_json::Value, String>, PolicyError> {
        let out = self.call("aggregate", |store, bindings| {
            bindings
                .kubestellar_status_policy_policy()
                .call_aggregate(store, object, reported)
        })?;
        match out {
            Err(refusal) => Ok(Err(refusal)),
            Ok(json) => match serde_json::from_str(&json) {
                Ok(value @ serde_json::Value::Object(_)) => Ok(Ok(value)),
                _ => Err(PolicyError::BadAggregate(truncate(&json))),
            },
        }
    }

    /// Runs `f` under the limits. The deadline is wall-clock time, so it also
    /// fires when the thread was merely descheduled mid-call (on a busy node,
    /// or in a CPU-throttled pod); a call that misses it is tried once more on
    /// a fresh instance, and only a second miss, which a guest that really
    /// runs too long always gets, is an error.
    fn call<R>(
        &mut self,
        call: &'static str,
        f: impl Fn(&mut Store<GuestState>, &StatusPolicy) -> wasmtime::Result<R>,
    ) -> Result<R, PolicyError> {
        let start = std::time::Instant::now();
        let reused = self.live.as_ref().is_some_and(|l| l.calls > 0);
        let result = match self.call_once(call, &f) {
            Err(PolicyError::Deadline { .. }) => self.call_once(call, &f),
            // The memory earlier calls left behind is not this call's fault.
            Err(PolicyError::MemoryCap { .. }) if reused => self.call_once(call, &f),
            result => result,
        };
        if let Some(observer) = &self.observer {
            observer(call, start.elapsed());
        }
        result
    }

    fn call_once<R>(
        &mut self,
        call: &'static str,
        f: &impl Fn(&mut Store<GuestState>, &StatusPolicy) -> wasmtime::Result<R>,
    ) -> Result<R, PolicyError> {
        let engine = &self.policy.engine;
        if self.live.is_none() {
            let (store, bindings) = self.instantiate()?;
            self.live = Some(Live {
                store,
                bindings,
                calls: 0,
            });
        }
        let live = self.live.as_mut().expect("instantiated above");
        live.store.set_epoch_deadline(engine.deadline_ticks());
        live.store.data_mut().limiter.denied = false;
        match f(&mut live.store, &live.bindings) {
            Ok(value) => {
                live.calls += 1;
                if worn_out(live.store.data().limiter.used, live.calls, engine.limits) {
                    self.live = None;
                    self.recycled += 1;
                }
                Ok(value)
            }
            Err(err) => {
                let denied = live.store.data().limiter.denied;
                self.live = None;
                Err(classify(call, err, denied, engine.limits))
            }
        }
    }

    pub(crate) fn instantiate(&self) -> Result<(Store<GuestState>, StatusPolicy), PolicyError> {
        let engine = &self.policy.engine;
        let mut store = Store::new(
            &engine.engine,
            GuestState {
                limiter: MemoryCap {
                    cap: engine.limits.memory,
                    denied: false,
                    used: 0,
                },
            },
        );
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(engine.instantiate_ticks());
        let bindings = self.policy.pre.instantiate(&mut store).map_err(|e| {
            classify(
                "instantiation",
                e,
                store.data().limiter.denied,
                engine.limits,
            )
        })?;
        Ok((store, bindings))
    }
}

/// Whether a healthy instance that has served `calls` calls and holds `used`
/// bytes of linear memory is replaced before the next call: after
/// [`Limits::recycle_after_calls`](super::Limits) calls, or once its memory is
/// past [`RECYCLE_AT`] of the cap, so that it never reaches the cap mid-call.
fn worn_out(used: usize, calls: u64, limits: super::Limits) -> bool {
    let (num, den) = RECYCLE_AT;
    used > limits.memory / den * num || calls >= limits.recycle_after_calls
}

fn classify(
    call: &'static str,
    err: wasmtime::Error,
    memory_denied: bool,
    limits: super::Limits,
) -> PolicyError {
    if err.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        PolicyError::Deadline {
            call,
            limit: limits.deadline,
        }
    } else if memory_denied {
        PolicyError::MemoryCap {
            call,
            limit: limits.memory,
        }
    } else {
        PolicyError::Trap {
            call,
            message: format!("{err:#}"),
        }
    }
}

fn truncate(s: &str) -> String {
    const MAX: usize = 200;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{DEFAULT_POLICY, Limits, ObjectDoc, PolicyEngine, RequestDoc};

    fn request() -> Request {
        (&RequestDoc::new(ObjectDoc::deployment("default", "web")).singleton(["wec1"])).into()
    }

    fn instance(limits: Limits) -> PolicyInstance {
        let engine = PolicyEngine::with_limits(limits).unwrap();
        PolicyInstance::new(engine.load(DEFAULT_POLICY).unwrap())
    }

    /// Generous deadline: these tests are about recycling, not time.
    fn limits() -> Limits {
        Limits {
            deadline: std::time::Duration::from_secs(5),
            ..Limits::default()
        }
    }

    #[test]
    fn an_instance_is_worn_out_after_the_calls_or_past_three_quarters_of_the_cap() {
        let limits = Limits {
            memory: 32 << 20,
            recycle_after_calls: 10,
            ..limits()
        };
        assert!(!worn_out(24 << 20, 9, limits), "exactly 3/4 is not past it");
        assert!(worn_out((24 << 20) + 1, 1, limits));
        assert!(worn_out(1 << 20, 10, limits));
        assert!(!worn_out(1 << 20, 9, limits));
    }

    #[test]
    fn the_memory_cap_counts_growth_and_remembers_a_denial() {
        let mut cap = MemoryCap {
            cap: 4 << 20,
            denied: false,
            used: 0,
        };
        assert!(cap.memory_growing(0, 1 << 20, None).unwrap());
        assert!(cap.memory_growing(1 << 20, 3 << 20, None).unwrap());
        assert_eq!(cap.used, 3 << 20);
        assert!(!cap.denied);
        assert!(!cap.memory_growing(3 << 20, 5 << 20, None).unwrap());
        assert!(cap.denied);
        assert_eq!(cap.used, 3 << 20, "a denied growth is not counted");
    }

    #[test]
    fn a_reused_instance_is_replaced_after_the_configured_calls_without_failing_one() {
        let mut policy = instance(Limits {
            recycle_after_calls: 3,
            ..limits()
        });
        for _ in 0..10 {
            assert_eq!(
                policy.decide(&request()).unwrap(),
                Decision::Singleton(vec!["wec1".into()])
            );
        }
        // Calls 3, 6 and 9 wore an instance out; the 10th runs on the fourth.
        assert_eq!(policy.recycled(), 3);
        assert!(policy.memory_used().is_some());
    }

    #[test]
    fn an_instance_past_three_quarters_of_the_cap_is_replaced_after_each_call() {
        let mut probe = instance(limits());
        probe.decide(&request()).unwrap();
        assert_eq!(probe.recycled(), 0, "the default limits leave it alone");
        let used = probe.memory_used().expect("a live instance");
        assert!(used > 0);
        // A cap under which the instance's own memory is already past 3/4.
        let mut policy = instance(Limits {
            memory: used * 5 / 4,
            ..limits()
        });
        for _ in 0..4 {
            assert_eq!(
                policy.decide(&request()).unwrap(),
                Decision::Singleton(vec!["wec1".into()])
            );
        }
        assert_eq!(policy.recycled(), 4);
        assert_eq!(
            policy.memory_used(),
            None,
            "the worn-out instance was dropped"
        );
    }
}
