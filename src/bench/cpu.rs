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
    per_item_us(used().saturating_sub(before), items)
}

fn per_item_us(spent: Duration, items: usize) -> f64 {
    spent.as_secs_f64() * 1e6 / items.max(1) as f64
}

/// User plus system CPU time another process (the provider double) has used so far, from
/// `/proc/<pid>/stat`; None where that cannot be read.
pub fn of_process(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces; utime and stime are fields
    // 14 and 15, so the 12th and 13th after it.
    let mut after = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .skip(11);
    let utime: u64 = after.next()?.parse().ok()?;
    let stime: u64 = after.next()?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks <= 0 {
        return None;
    }
    Some(Duration::from_secs_f64(
        (utime + stime) as f64 / ticks as f64,
    ))
}

/// Microseconds of another process's CPU per item, between two readings of `of_process`.
pub fn micros_between(
    before: Option<Duration>,
    after: Option<Duration>,
    items: usize,
) -> Option<f64> {
    Some(per_item_us(after?.saturating_sub(before?), items))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_process_cpu_is_read_from_proc() {
        // This process is "another process" as far as /proc is concerned; burn some CPU and see it.
        let before = of_process(std::process::id()).expect("readable /proc/<pid>/stat");
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(200) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let after = of_process(std::process::id()).expect("readable /proc/<pid>/stat");
        assert!(
            after.saturating_sub(before) >= Duration::from_millis(100),
            "{before:?} -> {after:?}"
        );
        assert_eq!(of_process(u32::MAX), None);
    }
}
