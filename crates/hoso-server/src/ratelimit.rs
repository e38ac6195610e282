//! Log lines that repeat for every request (a failed authentication, a refused write while the
//! disk is full) written at most once per period, with how many were left out since.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One kind of repeated log line.
#[derive(Debug)]
pub struct Every {
    period: Duration,
    last: Mutex<Option<Instant>>,
    suppressed: AtomicU64,
}

impl Every {
    /// At most one line per `period`.
    pub const fn new(period: Duration) -> Every {
        Every {
            period,
            last: Mutex::new(None),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(lines left out since the last one)` when a line may be written now.
    pub fn allow(&self) -> Option<u64> {
        self.allow_at(Instant::now())
    }

    fn allow_at(&self, now: Instant) -> Option<u64> {
        // A poisoned lock only means another thread panicked while logging: write the line.
        let mut last = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_some_and(|at| now.duration_since(at) < self.period) {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *last = Some(now);
        Some(self.suppressed.swap(0, Ordering::Relaxed))
    }
}

/// Failed authentications.
pub static AUTH_FAILURES: Every = Every::new(Duration::from_secs(10));
/// Commands refused while the store refuses writes.
pub static WRITES_REFUSED: Every = Every::new(Duration::from_secs(10));
/// Requests failed while the store's database is out of reach (PostgreSQL restarting, failing over).
pub static STORE_UNAVAILABLE: Every = Every::new(Duration::from_secs(10));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_period_with_the_count_left_out() {
        let every = Every::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(every.allow_at(t0), Some(0));
        for s in 1..10 {
            assert_eq!(every.allow_at(t0 + Duration::from_secs(s)), None);
        }
        assert_eq!(every.allow_at(t0 + Duration::from_secs(10)), Some(9));
        assert_eq!(every.allow_at(t0 + Duration::from_secs(11)), None);
        assert_eq!(every.allow_at(t0 + Duration::from_secs(25)), Some(1));
    }
}
