//! Skipped tests made visible: cargo shows no output of a passing test, so a test that could not
//! run (a real peer missing) says so in a file that `scripts/test` prints at the end of the run.

/// Says that the running test did not run for want of `why` (a peer not installed): a SKIPPED line
/// on stderr, and, under `scripts/test`, a line in the file it names in `LOA_SKIPPED_FILE`, which it
/// prints at the end of the run (cargo shows no output of a passing test).
pub fn record_skip(why: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|s| s.rsplit_once('-').map_or(s.clone(), |(b, _)| b.to_string()))
        .unwrap_or_default();
    let line = format!("{binary}::{test}: {why}");
    eprintln!("SKIPPED {line}; this test did not run");
    if let Some(file) = std::env::var_os("LOA_SKIPPED_FILE") {
        use std::io::Write;
        // One short append per line: lines of tests running in parallel do not interleave.
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file)
            .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
        if let Err(e) = written {
            panic!("cannot record the skip in {}: {e}", file.to_string_lossy());
        }
    }
}
