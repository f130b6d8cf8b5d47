//! A provider's quota: `rate_per_second` sustained, and at most `burst` sends in any 100 ms window.
//! governor's GCRA keeps the sustained rate (with a few cells of catch-up, so a timer that fires a
//! little late does not lose throughput for good); a log of the last `burst` send times enforces the
//! 100 ms cap exactly, which GCRA alone cannot (it allows `burst + rate/10` in a window). governor has
//! no sliding-window limiter, hence the few lines here.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

const WINDOW: Duration = Duration::from_millis(100);

pub struct Limiter {
    gcra: DefaultDirectRateLimiter,
    cap: usize,
    recent: Mutex<VecDeque<Instant>>,
}

impl Limiter {
    /// `None` when the provider has no rate limit. `burst` defaults to the rate's share of 100 ms.
    pub fn new(rate_per_second: Option<u32>, burst: Option<u32>) -> Option<Limiter> {
        let rate = NonZeroU32::new(rate_per_second?)?;
        let cap = burst.unwrap_or(rate.get().div_ceil(10)).max(1);
        // GCRA's catch-up room: about 20 ms of sending, enough to absorb timers that fire late,
        // small enough that sends stay spread out instead of leaving in clumps of `burst`.
        let cells = NonZeroU32::new((rate.get() / 50).clamp(1, cap)).unwrap_or(NonZeroU32::MIN);
        Some(Limiter {
            gcra: RateLimiter::direct(Quota::per_second(rate).allow_burst(cells)),
            cap: cap as usize,
            recent: Mutex::new(VecDeque::with_capacity(cap as usize)),
        })
    }

    /// Takes one send if both the window and the rate allow it now; otherwise how long to wait.
    pub fn check(&self) -> Result<(), Duration> {
        let now = Instant::now();
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            recent.pop_front();
        }
        if recent.len() >= self.cap {
            let oldest = recent.front().copied().unwrap_or(now);
            return Err((oldest + WINDOW)
                .saturating_duration_since(now)
                .max(Duration::from_micros(100)));
        }
        if let Err(not_until) = self.gcra.check() {
            return Err(not_until.wait_time_from(DefaultClock::default().now()));
        }
        recent.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_more_than_burst_in_a_window() {
        let l = Limiter::new(Some(1000), Some(5)).unwrap();
        let allowed = (0..50).filter(|_| l.check().is_ok()).count();
        assert_eq!(allowed, 5, "at 1000/s the window cap of 5 binds first");
        let wait = l.check().unwrap_err();
        assert!(wait <= WINDOW && wait > Duration::ZERO, "{wait:?}");
    }

    #[test]
    fn the_sustained_rate_binds_when_the_window_does_not() {
        let l = Limiter::new(Some(2), Some(10)).unwrap();
        assert_eq!(
            (0..10).filter(|_| l.check().is_ok()).count(),
            1,
            "one cell of catch-up at 2/s"
        );
        let wait = l.check().unwrap_err();
        assert!(wait > Duration::from_millis(400), "{wait:?}");
    }

    #[test]
    fn unlimited_without_a_rate() {
        assert!(Limiter::new(None, Some(5)).is_none());
        assert!(Limiter::new(Some(0), None).is_none());
    }
}
