//! A test skipped for want of a real peer is visible at the end of the README's test command,
//! `scripts/test`: cargo hides the output of passing tests, so the skip is recorded in a file the
//! script prints last.

#[path = "common/skip.rs"]
mod skip;

use std::process::Command;

#[test]
fn a_skipped_test_is_listed_at_the_end_of_the_test_command() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("skipped.txt");
    // SAFETY: the only test of this binary, and no other thread of it reads the environment.
    unsafe { std::env::set_var("LOA_SKIPPED_FILE", &file) };
    skip::record_skip("a peer that is never installed is not installed (apt-get install nothing)");

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/test");
    let out = Command::new("bash")
        .arg(script)
        .arg("--summary")
        .arg(&file)
        .output()
        .expect("scripts/test runs");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default();
    assert_eq!(
        last,
        "  SKIPPED skips::a_skipped_test_is_listed_at_the_end_of_the_test_command: \
         a peer that is never installed is not installed (apt-get install nothing)",
        "{text}"
    );
    assert!(text.contains("SKIPPED 1 test(s)"), "{text}");

    let none = dir.path().join("none.txt");
    let out = Command::new("bash")
        .arg(script)
        .arg("--summary")
        .arg(&none)
        .output()
        .expect("scripts/test runs");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "No test was skipped."
    );
}
