//! `loa serve` as a process of its own on a test's database, sending SMS to a Kannel double: what a
//! crash (SIGKILL) or a second instance is tried against.

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Starts `loa serve` with its config in `dir/{name}.toml`: the database `db`, SMS through the
/// Kannel double at `kannel` (with `provider_extra` TOML lines added to the provider), `concurrency`
/// sends at once, leases of 2 s (so a killed process's work is taken over quickly).
pub fn serve(
    dir: &Path,
    name: &str,
    db: &str,
    kannel: &str,
    concurrency: usize,
    provider_extra: &str,
) -> Child {
    serve_with_env(dir, name, db, kannel, concurrency, provider_extra, &[])
}

/// `serve`, with environment overrides of the config (`LOA__DISPATCH__POLL_INTERVAL_MS`, ...).
pub fn serve_with_env(
    dir: &Path,
    name: &str,
    db: &str,
    kannel: &str,
    concurrency: usize,
    provider_extra: &str,
    env: &[(&str, &str)],
) -> Child {
    let cfg = dir.join(format!("{name}.toml"));
    std::fs::write(
        &cfg,
        format!(
            r#"[database]
url = "{db}"
[server]
listen = "127.0.0.1:0"
[dispatch]
concurrency = {concurrency}
batch_size = 32
lease_seconds = 2
shutdown_grace_seconds = 2
[schedule]
quiet_hours = ""
[channels]
sms = "kannel"
[providers.kannel]
kind = "kannel"
base_url = "{kannel}"
username = "tester"
password = "foobar"
from = "TRUONGMP"
timeout_seconds = 1
{provider_extra}
"#
        ),
    )
    .unwrap();
    Command::new(env!("CARGO_BIN_EXE_loa"))
        .arg("--config")
        .arg(&cfg)
        .arg("serve")
        .envs(env.iter().copied())
        .env("LOA_LOG", "loa=info,warn")
        .stdout(Stdio::null())
        // Kept beside the config, for a failing test to show.
        .stderr(
            std::fs::File::create(dir.join(format!("{name}.log")))
                .map(Stdio::from)
                .unwrap_or_else(|_| Stdio::null()),
        )
        .spawn()
        .expect("loa serve starts")
}
