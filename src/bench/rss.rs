//! The process's peak resident memory, from /proc (Linux).

/// VmHWM in KiB, if readable.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Resets VmHWM to the current RSS (Linux >= 4.0), so a later peak belongs to what follows. Memory
/// glibc's allocator (SQLite's; Rust's allocations go through mimalloc) kept from earlier parts of
/// the benchmark is handed back to the system first, or it would count as this part's.
pub fn reset_peak() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap pages back to the kernel; it touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}
