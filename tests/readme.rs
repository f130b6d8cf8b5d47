//! README's tour (issue 15, point 11): every `sh` block of README.md, in order, in one shell, against
//! a fresh `loa serve` on `examples/loa.local.toml`, as a new user would paste them. It needs `curl`
//! and `jq` (installed by `.ci/run`) and port 8080, which the tour names.

#[path = "common/skip.rs"]
mod skip;

use std::process::Command;

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn every_readme_shell_example_runs_as_written() {
    let root = env!("CARGO_MANIFEST_DIR");
    if !have("curl") || !have("jq") {
        assert!(
            std::env::var_os("LOA_REQUIRE_PEERS").is_none(),
            "curl and jq are required here (LOA_REQUIRE_PEERS is set)"
        );
        skip::record_skip("curl or jq is not installed");
        return;
    }
    assert!(
        std::net::TcpListener::bind("127.0.0.1:8080").is_ok(),
        "README's tour serves on 127.0.0.1:8080, which something else holds"
    );
    // A fresh directory holding what the tour reads (examples/), so it writes nothing in the tree.
    let dir = tempfile::tempdir().unwrap();
    let examples = dir.path().join("examples");
    std::fs::create_dir(&examples).unwrap();
    for f in ["loa.local.toml", "danh-sach-lop.csv"] {
        std::fs::copy(format!("{root}/examples/{f}"), examples.join(f)).unwrap();
    }
    let out = Command::new("bash")
        .arg(format!("{root}/scripts/readme-examples.sh"))
        .arg(format!("{root}/README.md"))
        .current_dir(dir.path())
        .env("LOA", env!("CARGO_BIN_EXE_loa"))
        .env_remove("LOA_CONFIG")
        .output()
        .unwrap();
    let log = std::fs::read_to_string(dir.path().join("loa-local.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "the tour stopped ({}):\n{}\n--- loa serve's log:\n{log}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The campaign really went out: the Zalo parent by Zalo, the rest by SMS.
    let outbox = dir.path().join("loa-local/outbox");
    for f in ["zalo.jsonl", "sms.jsonl"] {
        let lines = std::fs::read_to_string(outbox.join(f)).unwrap_or_default();
        assert!(!lines.trim().is_empty(), "{f} is empty");
    }
    assert!(!log.contains("panicked"), "{log}");
}
