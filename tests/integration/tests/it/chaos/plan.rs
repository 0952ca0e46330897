//! The seed decides everything: the inputs, the mutations, and which fault
//! comes when. A small deterministic generator (splitmix64) rather than a
//! crate, so that a seed means the same run on every machine and version.

use std::time::Duration;

/// What a run is asked for: `CHAOS_SEED`, `CHAOS_OBJECTS`, `CHAOS_SECONDS`
/// (`cargo xtask chaos --seed N --objects N --seconds N` sets them).
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub seed: u64,
    pub objects: usize,
    pub seconds: u64,
}

/// The short form run by `cargo xtask test`: every fault once.
pub const SHORT: Settings = Settings {
    seed: 20261201,
    objects: 300,
    seconds: 100,
};

impl Settings {
    pub fn from_env() -> Self {
        let get = |name: &str, default: u64| match std::env::var(name) {
            Ok(v) => v
                .parse()
                .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
            Err(_) => default,
        };
        Settings {
            seed: get("CHAOS_SEED", SHORT.seed),
            objects: get("CHAOS_OBJECTS", SHORT.objects as u64) as usize,
            seconds: get("CHAOS_SECONDS", SHORT.seconds),
        }
    }
}

/// splitmix64.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// One fault the suite injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// SIGKILL of the `status-router run` process, then a new one.
    KillController,
    /// SIGKILL of the WDS API server, down for [`OUTAGE`], then restarted.
    KillWds,
    /// The same for the ITS API server.
    KillIts,
    /// The same for etcd (both API servers lose their storage).
    KillEtcd,
    /// SIGSTOP of the WDS API server for [`PAUSE`] (longer than the
    /// controller's request timeout), then SIGCONT.
    PauseWds,
    /// The same for the ITS API server.
    PauseIts,
    /// etcd compacted to its head, then the WDS API server restarted: the
    /// controller's watches resume from a compacted resourceVersion (410 Gone)
    /// and must relist.
    CompactEtcd,
    /// The policy file replaced by another policy (label-driven).
    SwapPolicy,
}

/// Every kind of fault.
pub const ALL: [Fault; 8] = [
    Fault::KillController,
    Fault::KillWds,
    Fault::KillIts,
    Fault::KillEtcd,
    Fault::PauseWds,
    Fault::PauseIts,
    Fault::CompactEtcd,
    Fault::SwapPolicy,
];

/// How long a killed server stays down before its restart.
pub const OUTAGE: Duration = Duration::from_secs(3);
/// How long a stopped server stays stopped: more than the controller's
/// 10 s request timeout.
pub const PAUSE: Duration = Duration::from_secs(12);

/// The faults of a run, in order: every kind once (shuffled), then more
/// chosen at random for a longer run (about one per 15 s); the one policy
/// swap in the middle.
pub fn schedule(rng: &mut Rng, seconds: u64) -> Vec<Fault> {
    let mut others: Vec<Fault> = ALL
        .iter()
        .copied()
        .filter(|f| *f != Fault::SwapPolicy)
        .collect();
    rng.shuffle(&mut others);
    let total = (seconds / 15).max(ALL.len() as u64) as usize;
    while others.len() + 1 < total {
        let f = ALL[rng.below(ALL.len() - 1)];
        others.push(f);
    }
    others.insert(others.len() / 2, Fault::SwapPolicy);
    others
}

#[test]
fn a_schedule_has_every_fault_and_one_swap_in_the_middle() {
    for seed in 0..20 {
        for seconds in [60, 100, 300] {
            let plan = schedule(&mut Rng::new(seed), seconds);
            for f in ALL {
                assert!(plan.contains(&f), "{seed}: {plan:?} lacks {f:?}");
            }
            let swaps: Vec<usize> = (0..plan.len())
                .filter(|&i| plan[i] == Fault::SwapPolicy)
                .collect();
            assert_eq!(swaps, [(plan.len() - 1) / 2], "{plan:?}");
        }
    }
    assert_eq!(
        schedule(&mut Rng::new(7), 300),
        schedule(&mut Rng::new(7), 300),
        "a seed gives one schedule"
    );
}
