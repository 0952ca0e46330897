//! When the controller last changed the WDS, from its write counters: the
//! moment the statuses converged, once every object is seen right. Started
//! before the last fault (so that writes made right at the fault's end, and
//! those of a controller restarted by it, count), it polls the counters
//! every 50 ms and keeps the time of the last change, a counter that drops
//! (a new process) included.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::controller::Writes;

/// What the poller saw: the time of the last change, and the last reading.
type Seen = (Option<Instant>, Option<u64>);

pub struct Watch {
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Watch {
    pub fn start(writes: Writes) -> Self {
        let seen = Arc::new(Mutex::new((None, None)));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(now) = writes.now() {
                        let mut seen = seen.lock().unwrap();
                        if seen.1.is_some_and(|before| before != now) {
                            seen.0 = Some(Instant::now());
                        }
                        seen.1 = Some(now);
                    }
                    std::thread::sleep(Duration::from_millis(50)); // poll interval
                }
            })
        };
        Self { seen, stop, thread }
    }

    /// Stops polling; the time of the last change (`None`: none while it
    /// polled) and the last reading of the counters. Panics if it never read
    /// them: a measurement that could not read would say "no write", always.
    pub fn stop(self) -> (Option<Instant>, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the write watch");
        let (changed, last) = *self.seen.lock().unwrap();
        let last = last.expect("the controller's write counters were never read from its /metrics");
        (changed, last)
    }
}
