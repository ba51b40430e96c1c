//! A single-flight, rate-limited gate for requests that cost a full scan of the node's state
//! (`GET /api/v1/admin/audit`). Without it, anyone could keep a node's disk and one core busy
//! by asking repeatedly or concurrently. At most one turn runs at a time, and the next may
//! start only `interval_ms_min` after the previous one ended; everything else is refused at
//! once with a `Retry-After`, never queued.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::ApiError;

pub struct ScanGate {
    what: &'static str,
    interval_min: Duration,
    state: Mutex<GateState>,
}

#[derive(Default)]
struct GateState {
    running: bool,
    ended_at: Option<Instant>,
}

/// The right to run one scan; the gate reopens (after its interval) when this is dropped.
pub struct ScanTurn {
    gate: Arc<ScanGate>,
}

impl ScanGate {
    pub fn new(what: &'static str, interval_ms_min: u64) -> Arc<ScanGate> {
        Arc::new(ScanGate {
            what,
            interval_min: Duration::from_millis(interval_ms_min),
            state: Mutex::new(GateState::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, GateState> {
        // The state is two plain fields, consistent after any panic: poisoning carries no news.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes the one turn, or says how long to wait for it.
    pub fn enter(self: &Arc<ScanGate>) -> Result<ScanTurn, ApiError> {
        self.enter_at(Instant::now())
    }

    fn enter_at(self: &Arc<ScanGate>, now: Instant) -> Result<ScanTurn, ApiError> {
        let mut state = self.lock();
        if state.running {
            return Err(ApiError::RateLimited {
                message: format!(
                    "a {} is already running on this node; retry later",
                    self.what
                ),
                retry_after_s: seconds_ceil(self.interval_min).max(1),
            });
        }
        if let Some(ended_at) = state.ended_at {
            let open_at = ended_at + self.interval_min;
            if now < open_at {
                return Err(ApiError::RateLimited {
                    message: format!(
                        "at most one {} per {} ms on this node; retry later",
                        self.what,
                        self.interval_min.as_millis()
                    ),
                    retry_after_s: seconds_ceil(open_at - now).max(1),
                });
            }
        }
        state.running = true;
        Ok(ScanTurn { gate: self.clone() })
    }
}

impl Drop for ScanTurn {
    fn drop(&mut self) {
        let mut state = self.gate.lock();
        state.running = false;
        state.ended_at = Some(Instant::now());
    }
}

fn seconds_ceil(duration: Duration) -> u64 {
    let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    millis.div_ceil(1_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry_after(result: Result<ScanTurn, ApiError>) -> u64 {
        match result {
            Err(ApiError::RateLimited { retry_after_s, .. }) => retry_after_s,
            Err(other) => panic!("unexpected error {other:?}"),
            Ok(_) => panic!("the gate let a second scan in"),
        }
    }

    #[test]
    fn one_turn_at_a_time() {
        let gate = ScanGate::new("scan", 0);
        let turn = gate.enter().unwrap();
        assert_eq!(retry_after(gate.enter()), 1);
        drop(turn);
        gate.enter().unwrap();
    }

    #[test]
    fn interval_counts_from_the_end_of_the_previous_turn() {
        let gate = ScanGate::new("scan", 2_500);
        drop(gate.enter().unwrap());
        let now = Instant::now();
        assert_eq!(retry_after(gate.enter_at(now)), 3);
        assert_eq!(
            retry_after(gate.enter_at(now + Duration::from_millis(2_000))),
            1
        );
        gate.enter_at(now + Duration::from_millis(2_600)).unwrap();
    }
}
