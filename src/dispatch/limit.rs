//! A provider's quota: `rate_per_second` sustained, and at most `burst` sends in any 100 ms window.
//! governor's GCRA keeps the sustained rate (with a few cells of catch-up, so a timer that fires a
//! little late does not lose throughput for good); a log of the last `burst` send times enforces the
//! 100 ms cap exactly, which GCRA alone cannot (it allows `burst + rate/10` in a window). governor has
//! no sliding-window limiter, hence the few lines here.
//!
//! The quota is the provider account's, not this process's: with several instances on one database
//! each takes an equal share (`set_share`, from the live instances the store counts), so together
//! they stay within the rate and the window cap.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

const WINDOW: Duration = Duration::from_millis(100);

pub struct Limiter {
    rate: NonZeroU32,
    /// The account's cap per 100 ms window.
    burst: u32,
    state: Mutex<State>,
}

/// This process's share of the quota: its GCRA and window cap, rebuilt when the share changes.
struct State {
    share: u32,
    gcra: DefaultDirectRateLimiter,
    cap: usize,
    recent: VecDeque<Instant>,
}

/// The GCRA and window cap of one share in `share` of the account's quota.
fn share_of(rate: NonZeroU32, burst: u32, share: u32) -> (DefaultDirectRateLimiter, usize) {
    let share = share.max(1);
    // At least one send per window: with more instances than the cap, each one's single send
    // could add up past it (documented; a cap that small means one instance should send).
    let cap = (burst / share).max(1);
    // GCRA's catch-up room: about 20 ms of sending, enough to absorb timers that fire late,
    // small enough that sends stay spread out instead of leaving in clumps of `burst`.
    let cells = NonZeroU32::new((rate.get() / share / 50).clamp(1, cap)).unwrap_or(NonZeroU32::MIN);
    // One send every `share / rate` seconds: also right when the share is below one per second.
    let period = Duration::from_secs_f64(f64::from(share) / f64::from(rate.get()));
    let quota = Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(rate))
        .allow_burst(cells);
    (RateLimiter::direct(quota), cap as usize)
}

impl Limiter {
    /// `None` when the provider has no rate limit. `burst` defaults to the rate's share of 100 ms.
    pub fn new(rate_per_second: Option<u32>, burst: Option<u32>) -> Option<Limiter> {
        let rate = NonZeroU32::new(rate_per_second?)?;
        let burst = burst.unwrap_or(rate.get().div_ceil(10)).max(1);
        let (gcra, cap) = share_of(rate, burst, 1);
        Some(Limiter {
            rate,
            burst,
            state: Mutex::new(State {
                share: 1,
                gcra,
                cap,
                recent: VecDeque::with_capacity(cap),
            }),
        })
    }

    /// Takes 1/`instances` of the account's quota from now on (the live instances sharing it);
    /// true if that changed the share.
    pub fn set_share(&self, instances: u32) -> bool {
        let instances = instances.max(1);
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.share != instances {
            let (gcra, cap) = share_of(self.rate, self.burst, instances);
            st.share = instances;
            st.gcra = gcra;
            st.cap = cap;
            return true;
        }
        false
    }

    /// Takes one send if both the window and the rate allow it now; otherwise how long to wait.
    pub fn check(&self) -> Result<(), Duration> {
        let now = Instant::now();
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while st
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            st.recent.pop_front();
        }
        if st.recent.len() >= st.cap {
            let oldest = st.recent.front().copied().unwrap_or(now);
            return Err((oldest + WINDOW)
                .saturating_duration_since(now)
                .max(Duration::from_micros(100)));
        }
        if let Err(not_until) = st.gcra.check() {
            return Err(not_until.wait_time_from(DefaultClock::default().now()));
        }
        st.recent.push_back(now);
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
    fn a_share_takes_its_part_of_the_window_and_the_rate() {
        let l = Limiter::new(Some(1000), Some(10)).unwrap();
        l.set_share(2);
        assert_eq!(
            (0..50).filter(|_| l.check().is_ok()).count(),
            5,
            "two instances: each has half of the window cap"
        );
        // At 2/s shared by 4, one send every two seconds.
        let slow = Limiter::new(Some(2), Some(10)).unwrap();
        slow.set_share(4);
        assert!(slow.check().is_ok());
        let wait = slow.check().unwrap_err();
        assert!(wait > Duration::from_millis(1500), "{wait:?}");
        // Back to the whole quota once alone again.
        slow.set_share(1);
        assert!(slow.check().is_ok());
    }

    #[test]
    fn unlimited_without_a_rate() {
        assert!(Limiter::new(None, Some(5)).is_none());
        assert!(Limiter::new(Some(0), None).is_none());
    }
}
