//! A circuit breaker in front of Redis: after `failures_max` failures in a row it opens, and
//! for `cooldown_ms` nobody calls Redis (reads go to local state at once instead of each
//! waiting out a timeout). Then it half-opens: one caller probes; success closes it, failure
//! opens it for another cool-down. A probe whose caller vanished without reporting (its
//! request was dropped) expires after one cool-down, so the breaker can never stick open.
//! Lock-free: a few atomics, cheap on every read.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

/// Whether a caller may use Redis now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// Closed: go ahead.
    Granted,
    /// Half-open: go ahead as the one probe; report the outcome.
    Probe,
    /// Open (or another caller is probing): do not call Redis.
    Denied,
}

#[derive(Debug)]
pub struct Breaker {
    origin: Instant,
    failures_max: u32,
    cooldown_ms: u64,
    failures: AtomicU32,
    /// Milliseconds since `origin` until which the breaker is open; 0 while closed.
    open_until_ms: AtomicU64,
    /// Milliseconds since `origin` when the current probe started; 0 when none is out.
    probe_started_ms: AtomicU64,
    opened: AtomicU64,
}

impl Breaker {
    pub fn new(failures_max: u32, cooldown_ms: u64) -> Breaker {
        Breaker {
            origin: Instant::now(),
            failures_max: failures_max.max(1),
            cooldown_ms,
            failures: AtomicU32::new(0),
            open_until_ms: AtomicU64::new(0),
            probe_started_ms: AtomicU64::new(0),
            opened: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        // Never 0, which means "closed".
        self.origin.elapsed().as_millis() as u64 + 1
    }

    pub fn permit(&self) -> Permit {
        let until = self.open_until_ms.load(Ordering::Acquire);
        if until == 0 {
            return Permit::Granted;
        }
        let now = self.now_ms();
        if now < until {
            return Permit::Denied;
        }
        let started = self.probe_started_ms.load(Ordering::Acquire);
        let expired = started != 0 && now.saturating_sub(started) > self.cooldown_ms;
        if started != 0 && !expired {
            return Permit::Denied;
        }
        match self.probe_started_ms.compare_exchange(
            started,
            now,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => Permit::Probe,
            Err(_) => Permit::Denied,
        }
    }

    /// Whether callers are refused right now, without taking the probe.
    pub fn is_open(&self) -> bool {
        let until = self.open_until_ms.load(Ordering::Acquire);
        until != 0 && self.now_ms() < until
    }

    pub fn success(&self) {
        self.failures.store(0, Ordering::Relaxed);
        self.open_until_ms.store(0, Ordering::Release);
        self.probe_started_ms.store(0, Ordering::Release);
    }

    pub fn failure(&self) {
        let failures = self
            .failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        let was_open = self.open_until_ms.load(Ordering::Acquire) != 0;
        if was_open || failures >= self.failures_max {
            self.open_until_ms
                .store(self.now_ms() + self.cooldown_ms, Ordering::Release);
            self.probe_started_ms.store(0, Ordering::Release);
            if !was_open {
                self.opened.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// `closed`, `open` or `half-open` (cool-down over, the next caller probes).
    pub fn state(&self) -> &'static str {
        let until = self.open_until_ms.load(Ordering::Acquire);
        if until == 0 {
            "closed"
        } else if self.now_ms() < until {
            "open"
        } else {
            "half-open"
        }
    }

    /// How many times it went from closed to open.
    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_n_failures_and_half_opens_after_the_cooldown() {
        let breaker = Breaker::new(3, 50);
        assert_eq!(breaker.permit(), Permit::Granted);
        breaker.failure();
        breaker.failure();
        assert_eq!(breaker.state(), "closed");
        breaker.failure();
        assert_eq!(breaker.state(), "open");
        assert_eq!(breaker.opened(), 1);
        assert_eq!(breaker.permit(), Permit::Denied);
        std::thread::sleep(std::time::Duration::from_millis(60));
        assert_eq!(breaker.state(), "half-open");
        assert_eq!(breaker.permit(), Permit::Probe);
        assert_eq!(breaker.permit(), Permit::Denied, "one probe at a time");
        breaker.failure();
        assert_eq!(breaker.state(), "open", "a failed probe opens it again");
        assert_eq!(breaker.opened(), 1, "still the same opening");
        std::thread::sleep(std::time::Duration::from_millis(60));
        assert_eq!(breaker.permit(), Permit::Probe);
        breaker.success();
        assert_eq!(breaker.state(), "closed");
        assert_eq!(breaker.permit(), Permit::Granted);
    }

    #[test]
    fn a_probe_that_never_reports_expires() {
        let breaker = Breaker::new(1, 30);
        breaker.failure();
        assert!(breaker.is_open());
        std::thread::sleep(std::time::Duration::from_millis(40));
        assert!(!breaker.is_open(), "peeking takes no probe");
        assert_eq!(breaker.permit(), Permit::Probe);
        // Its caller vanished: no success, no failure.
        assert_eq!(breaker.permit(), Permit::Denied);
        std::thread::sleep(std::time::Duration::from_millis(40));
        assert_eq!(
            breaker.permit(),
            Permit::Probe,
            "a new probe after a cool-down"
        );
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let breaker = Breaker::new(2, 1_000);
        breaker.failure();
        breaker.success();
        breaker.failure();
        assert_eq!(breaker.state(), "closed");
    }
}
