//! The files in `deploy/`, checked as far as this machine can: the systemd unit passes
//! `systemd-analyze verify` with no warning (an unknown or misplaced key is only a warning to
//! systemd, and a hardening line it ignores protects nothing), and the container image runs the
//! binary the way the unit does.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::peers::available;

#[test]
fn the_systemd_unit_verifies_without_warnings() {
    let have = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !available("systemd-analyze", have, "apt-get install systemd") {
        return;
    }
    let unit = std::fs::read_to_string("deploy/systemd/loa.service").unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/loa --config /etc/loa/loa.toml serve"));
    // verify checks that ExecStart's binary exists: point it at the one cargo built.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("loa.service");
    std::fs::write(
        &copy,
        unit.replace("/usr/local/bin/loa", env!("CARGO_BIN_EXE_loa")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Lines about the host's own units (in a container without systemd running) are not ours.
    let ours: Vec<&str> = said.lines().filter(|l| l.contains("loa.service")).collect();
    assert!(out.status.success() && ours.is_empty(), "{said}");
}

#[test]
fn the_container_runs_what_the_unit_runs() {
    let file = std::fs::read_to_string("deploy/container/Dockerfile").unwrap();
    // The same command line as the unit, as a non-root user, listening beyond the container.
    assert!(file.contains(r#"CMD ["--config", "/etc/loa/loa.toml", "serve"]"#));
    assert!(file.contains("USER nonroot"));
    assert!(file.contains("ENV LOA__SERVER__LISTEN=0.0.0.0:8080"));
    // The environment override the image relies on wins over the config file: the file's address
    // is taken, so `serve` comes up only if it listens where the environment says.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("loa.toml");
    std::fs::write(
        &cfg,
        format!(
            "[database]\nurl = \"sqlite://{}\"\n[server]\nlisten = \"{}\"\n",
            dir.path().join("loa.db").display(),
            taken.local_addr().unwrap()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_loa"))
        .arg("--config")
        .arg(&cfg)
        .arg("serve")
        .current_dir(dir.path())
        .env("LOA__SERVER__LISTEN", "127.0.0.1:0")
        .env("LOA_LOG", "loa=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let serving = BufReader::new(stderr)
        .lines()
        .take(50)
        .map_while(Result::ok)
        .find(|l| l.contains("loa serving"));
    let _ = child.kill();
    let _ = child.wait();
    let line = serving.expect("serve listens at the address from the environment");
    assert!(
        !line.contains(&taken.local_addr().unwrap().to_string()),
        "{line}"
    );
}
