//! Real third-party servers for tests: aiosmtpd (SMTP) and Kannel (bearerbox + smsbox + fakesmsc).
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
    eprintln!("SKIPPED: {what} is not installed ({install}); this test did not run");
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
