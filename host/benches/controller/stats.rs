//! Latency percentiles over the objects of a phase.

use std::time::Instant;

#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub n: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    pub min: f64,
}

impl Stats {
    /// Milliseconds from each ITS acknowledgement to the WDS status seen.
    pub fn latencies(acks: &[Option<Instant>], seen: &[Option<Instant>]) -> Stats {
        let mut ms: Vec<f64> = acks
            .iter()
            .zip(seen)
            .filter_map(|(a, s)| {
                let (a, s) = ((*a)?, (*s)?);
                // Signed: the controller may beat the acknowledgement back to us.
                Some(if s >= a {
                    (s - a).as_secs_f64() * 1e3
                } else {
                    -(a - s).as_secs_f64() * 1e3
                })
            })
            .collect();
        ms.sort_by(f64::total_cmp);
        let pct = |p: f64| {
            if ms.is_empty() {
                return f64::NAN;
            }
            let rank = ((p / 100.0) * ms.len() as f64).ceil() as usize;
            ms[rank.clamp(1, ms.len()) - 1]
        };
        Stats {
            n: ms.len(),
            p50: pct(50.0),
            p99: pct(99.0),
            max: ms.last().copied().unwrap_or(f64::NAN),
            min: ms.first().copied().unwrap_or(f64::NAN),
        }
    }
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (min {:.1} ms, {} objects)",
            self.p50, self.p99, self.max, self.min, self.n
        )
    }
}
