//! Real third-party servers for tests: aiosmtpd and Postfix's smtp-sink (SMTP), Kannel (bearerbox +
//! smsbox + fakesmsc).
//! Missing ones are skipped with a message, or fail the run when LOA_REQUIRE_PEERS=1 (CI).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed when the test ends.
pub struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} did not open port {port}");
}

/// False (and a SKIPPED line) when the peer is missing; panics instead under LOA_REQUIRE_PEERS=1.
pub fn available(what: &str, ok: bool, install: &str) -> bool {
    if ok {
        return true;
    }
    if std::env::var("LOA_REQUIRE_PEERS").is_ok_and(|v| v == "1") {
        panic!("{what} is required (LOA_REQUIRE_PEERS=1) but not installed: {install}");
    }
    super::record_skip(&format!("{what} is not installed ({install})"));
    false
}

pub fn have_aiosmtpd() -> bool {
    available(
        "aiosmtpd",
        Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
        "pip install aiosmtpd",
    )
}

pub const SMTP_SINK: &str = "/usr/sbin/smtp-sink";

pub fn have_smtp_sink() -> bool {
    available(
        "Postfix smtp-sink",
        Path::new(SMTP_SINK).exists(),
        "apt-get install postfix",
    )
}

/// Postfix's smtp-sink, writing one file per message it accepts into the returned directory.
pub fn start_smtp_sink(dir: &Path) -> (Proc, u16, PathBuf) {
    start_smtp_sink_with(dir, &[])
}

/// The same with smtp-sink's own fault options (`-f RCPT`: 5xx to every RCPT, ...).
pub fn start_smtp_sink_with(dir: &Path, faults: &[&str]) -> (Proc, u16, PathBuf) {
    let port = free_port();
    let dump = dir.join("sink");
    std::fs::create_dir_all(&dump).unwrap();
    let mut cmd = Command::new(SMTP_SINK);
    // smtp-sink refuses to run as root without a user to switch to, which must be able to write.
    // SAFETY: geteuid takes no arguments and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dump, std::fs::Permissions::from_mode(0o777)).unwrap();
        cmd.args(["-u", "nobody"]);
    }
    let child = cmd
        .args(faults)
        .arg("-d")
        .arg(format!("{}/%H%M%S.", dump.display()))
        .args([&format!("127.0.0.1:{port}"), "256"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start smtp-sink");
    let p = Proc(child);
    wait_port(port, "smtp-sink");
    (p, port, dump)
}

/// A TCP relay in front of a real server that counts the connections passing through it: how many
/// were open at once at most, and how many were made in all.
pub struct ConnCounter {
    pub port: u16,
    open: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    peak: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    total: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl ConnCounter {
    pub async fn start(upstream: u16) -> ConnCounter {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (open, peak, total) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        let (o, p, t) = (open.clone(), peak.clone(), total.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                t.fetch_add(1, Ordering::SeqCst);
                let now = o.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(now, Ordering::SeqCst);
                let o = o.clone();
                tokio::spawn(async move {
                    if let Ok(mut server) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    {
                        let _ = client.set_nodelay(true);
                        let _ = server.set_nodelay(true);
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                    o.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        ConnCounter {
            port,
            open,
            peak,
            total,
        }
    }
    pub fn peak(&self) -> usize {
        self.peak.load(std::sync::atomic::Ordering::SeqCst)
    }
    pub fn total(&self) -> usize {
        self.total.load(std::sync::atomic::Ordering::SeqCst)
    }
    pub fn open(&self) -> usize {
        self.open.load(std::sync::atomic::Ordering::SeqCst)
    }
}

pub fn have_kannel() -> bool {
    available(
        "Kannel",
        Path::new("/usr/sbin/bearerbox").exists()
            && Path::new("/usr/sbin/smsbox").exists()
            && Path::new(FAKESMSC).exists(),
        "apt-get install kannel kannel-extras",
    )
}

/// aiosmtpd writing every message it accepts into a maildir.
pub fn start_smtp(dir: &Path) -> (Proc, u16, PathBuf) {
    let port = free_port();
    let maildir = dir.join("maildir");
    let child = Command::new("python3")
        .args([
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{port}"),
            "-c",
            "aiosmtpd.handlers.Mailbox",
        ])
        .arg(&maildir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start aiosmtpd");
    let p = Proc(child);
    wait_port(port, "aiosmtpd");
    (p, port, maildir)
}

const FAKESMSC: &str = "/usr/lib/kannel/test/fakesmsc";

pub struct Kannel {
    _procs: Vec<Proc>,
    pub sendsms_port: u16,
    pub fakesmsc_log: PathBuf,
}

/// bearerbox, then the fake SMSC, then smsbox, as LOCAL-PEERS.md describes, on free ports.
pub fn start_kannel(dir: &Path) -> Kannel {
    let (admin, smsbox, sendsms, smsc) = (free_port(), free_port(), free_port(), free_port());
    let d = dir.display();
    let conf = dir.join("kannel.conf");
    std::fs::write(
        &conf,
        format!(
            r#"group = core
admin-port = {admin}
admin-interface = 127.0.0.1
admin-password = bar
status-password = foo
admin-allow-ip = "127.0.0.1"
smsbox-port = {smsbox}
smsbox-interface = 127.0.0.1
box-allow-ip = "127.0.0.1"
log-file = "{d}/bearerbox.log"
dlr-storage = internal
store-type = file
store-location = "{d}/kannel.store"

group = smsc
smsc = fake
smsc-id = FAKE
port = {smsc}
our-host = 127.0.0.1
connect-allow-ip = 127.0.0.1

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {smsbox}
sendsms-port = {sendsms}
sendsms-interface = 127.0.0.1
global-sender = 13013
log-file = "{d}/smsbox.log"

group = sendsms-user
username = tester
password = foobar
max-messages = 10

group = sms-service
keyword = default
text = "No service specified"
catch-all = true
"#
        ),
    )
    .unwrap();
    let quiet = || Stdio::null();
    let mut procs = vec![Proc(
        Command::new("/usr/sbin/bearerbox")
            .args(["-v", "1"])
            .arg(&conf)
            .stdout(quiet())
            .stderr(quiet())
            .spawn()
            .expect("bearerbox"),
    )];
    wait_port(admin, "bearerbox");
    wait_port(smsc, "bearerbox fake SMSC listener");
    let fakesmsc_log = dir.join("fakesmsc.log");
    let log = std::fs::File::create(&fakesmsc_log).unwrap();
    let log_err = log.try_clone().unwrap();
    procs.push(Proc(
        // Line-buffered, or the log stays empty until fakesmsc exits.
        Command::new("stdbuf")
            .args([
                "-oL",
                FAKESMSC,
                "-H",
                "127.0.0.1",
                "-r",
                &smsc.to_string(),
                "-m",
                "0",
                "1 2 text x",
            ])
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .expect("fakesmsc"),
    ));
    std::thread::sleep(Duration::from_secs(1));
    procs.push(Proc(
        Command::new("/usr/sbin/smsbox")
            .args(["-v", "1"])
            .arg(&conf)
            .stdout(quiet())
            .stderr(quiet())
            .spawn()
            .expect("smsbox"),
    ));
    wait_port(sendsms, "smsbox");
    Kannel {
        _procs: procs,
        sendsms_port: sendsms,
        fakesmsc_log,
    }
}

/// Debian's chromium and chromium-driver, for the browser tests.
pub fn have_chromium() -> bool {
    available(
        "Chromium and its WebDriver",
        Path::new("/usr/bin/chromium").exists() && Path::new("/usr/bin/chromedriver").exists(),
        "apt-get install chromium chromium-driver",
    )
}

/// A chromedriver on a free port of the loopback: (process, WebDriver URL).
pub fn chromedriver() -> (Proc, String) {
    let port = free_port();
    let child = Command::new("/usr/bin/chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let p = Proc(child);
    wait_port(port, "chromedriver");
    (p, format!("http://127.0.0.1:{port}"))
}
