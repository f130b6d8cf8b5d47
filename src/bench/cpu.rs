//! CPU time used by this process (user + system), from getrusage: a steadier figure than wall time
//! on a shared machine, and one that leaves out the provider double, which runs in its own process.

use std::time::Duration;

/// User plus system CPU time this process has used so far.
pub fn used() -> Duration {
    // SAFETY: getrusage only writes the struct it is given; a zeroed rusage is a valid value.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF and a valid pointer to an rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// Microseconds of this process's CPU per item for `items` done since `before`.
pub fn micros_per(before: Duration, items: usize) -> f64 {
    (used().saturating_sub(before)).as_secs_f64() * 1e6 / items.max(1) as f64
}
