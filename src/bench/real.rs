//! Parts 7 and 8 of `loa bench`: Loa against real servers, next to those servers' own load tools on
//! the same machine. 7: email into Postfix's `smtp-sink`, next to `smtp-source` over the same number
//! of connections (the provider's `pool_size`). 8: SMS through a real Kannel (bearerbox, smsbox, the
//! fake SMSC, delivery reports on) at dispatch concurrency 8, next to `wrk` and a bare client at the
//! same concurrency on the same Kannel. A part whose server is not installed is skipped with a line
//! saying so; its figures stay empty.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use providers::email::{SmtpProvider, SmtpSettings, TlsMode};
use providers::kannel::{KannelProvider, KannelSettings};
use providers::{Channel, Message, Provider, Unsubscribe};

use super::{BenchOptions, Report, approved_campaign, fresh_dir, run_to_done, seed};
use crate::app::App;
use crate::clock::now_ms;
use crate::config::{Config, ProviderConfig, ProviderKind};
use crate::domain::campaign::{Audience, TemplateBodies};
use crate::domain::contact::Role;
use crate::store::Store;

const SMTP_SINK: &str = "/usr/sbin/smtp-sink";
const SMTP_SOURCE: &str = "/usr/sbin/smtp-source";
const BEARERBOX: &str = "/usr/sbin/bearerbox";
const SMSBOX: &str = "/usr/sbin/smsbox";
const FAKESMSC: &str = "/usr/lib/kannel/test/fakesmsc";

/// The SMTP provider's `pool_size` in part 7 (Loa's default), and so `smtp-source`'s sessions.
pub const EMAIL_POOL: u32 = 4;
/// The dispatch concurrency of part 8, where issue 14 found Loa 2-4 times below Kannel.
pub const SMS_CONCURRENCY: usize = 8;

const FROM: &str = "Phòng GD&ĐT Lạc Sơn <no-reply@pgd-lacson.edu.vn>";
const SUBJECT: &str = "Thông báo của {{ sender_name }} về an toàn trên mạng";
/// About 1.5 kB once rendered and encoded, the size issue 14 measured with.
const EMAIL_TEXT: &str = "Kính gửi phụ huynh em {{ student_names }},

Nhà trường xin gửi tới quý phụ huynh một số lưu ý để giữ an toàn cho con khi dùng mạng trong kỳ nghỉ:
không chia sẻ mật khẩu, ảnh riêng tư hay địa chỉ nhà với người lạ; chỉ cài ứng dụng từ cửa hàng chính
thức; bật chế độ kiểm soát của phụ huynh trên máy tính bảng và điện thoại; dặn con báo ngay với người
lớn khi có ai đề nghị gặp mặt, gửi tiền hoặc gửi mã xác nhận. Quý phụ huynh có thể xem thêm tài liệu
hướng dẫn trên cổng thông tin của nhà trường và liên hệ giáo viên chủ nhiệm khi cần hỗ trợ.

Trân trọng cảm ơn sự phối hợp của quý phụ huynh.
{{ sender_name }}";

/// A child process killed when the part ends.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(cmd: &mut Command, what: &str) -> anyhow::Result<Proc> {
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot start {what}: {e}"))?;
    Ok(Proc(child))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn wait_port(port: u16, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("{what} did not open port {port}")
}

fn installed(paths: &[&str]) -> bool {
    paths.iter().all(|p| Path::new(p).exists())
}

/// Postfix's smtp-sink, keeping nothing: the part measures SMTP, not a disk.
async fn smtp_sink() -> anyhow::Result<(Proc, u16)> {
    let port = free_port()?;
    let mut cmd = Command::new(SMTP_SINK);
    // smtp-sink refuses to run as root without a user to switch to.
    // SAFETY: geteuid takes no arguments and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        cmd.args(["-u", "nobody"]);
    }
    let p = spawn(cmd.args([&format!("127.0.0.1:{port}"), "256"]), "smtp-sink")?;
    wait_port(port, "smtp-sink").await?;
    Ok((p, port))
}

/// What Loa renders for person `i`, without Loa: the bare client's and smtp-source's message.
fn email_message(i: usize) -> Message {
    let sender = "PGD-BENCH";
    Message {
        subject: Some(SUBJECT.replace("{{ sender_name }}", sender)),
        unsubscribe: Some(Unsubscribe {
            url: format!("http://127.0.0.1:8080/u/{i}-0123456789abcdef0123456789abcdef?c=email"),
            mailto: None,
        }),
        ..Message::new(
            i.to_string(),
            Channel::Email,
            format!("ph{i}@example.vn"),
            EMAIL_TEXT
                .replace("{{ student_names }}", &format!("Học Sinh {i}"))
                .replace("{{ sender_name }}", sender),
        )
    }
}

fn smtp_settings(port: u16) -> SmtpSettings {
    SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        tls: TlsMode::None,
        username: None,
        password: None,
        from: FROM.into(),
        pool_size: EMAIL_POOL,
        timeout: Duration::from_secs(30),
    }
}

/// Part 7: smtp-source, the bare SMTP provider and Loa end to end, each `n` messages into smtp-sink.
pub async fn email(opts: &BenchOptions, r: &mut Report) -> anyhow::Result<()> {
    if !installed(&[SMTP_SINK, SMTP_SOURCE]) {
        eprintln!(
            "bench: 7 SKIPPED: Postfix's smtp-sink and smtp-source are not installed \
             (apt-get install postfix); no email figures"
        );
        return Ok(());
    }
    let n = opts.real_people;
    let dir = fresh_dir(&opts.dir, "email")?;
    let (_sink, port) = smtp_sink().await?;

    // smtp-source sends this file as each message: Loa's own bytes, headers included.
    let from: lettre::message::Mailbox = FROM.parse()?;
    let sample = providers::email::build_email(&email_message(0), &from)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .formatted();
    r.email_bytes = Some(sample.len());
    let file = dir.join("message.eml");
    std::fs::write(&file, &sample)?;
    let started = Instant::now();
    let status = Command::new(SMTP_SOURCE)
        .args(["-d", "-s", &EMAIL_POOL.to_string(), "-m", &n.to_string()])
        .arg("-F")
        .arg(&file)
        .args([
            "-f",
            "no-reply@pgd-lacson.edu.vn",
            "-t",
            "ph0@example.vn",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        anyhow::bail!("smtp-source failed: {status}");
    }
    r.smtp_source_mps = Some(n as f64 / started.elapsed().as_secs_f64());

    // The same provider Loa uses, fed by a bare loop at the dispatcher's concurrency.
    let provider =
        Arc::new(SmtpProvider::new("bare", &smtp_settings(port)).map_err(anyhow::Error::msg)?);
    let concurrency = Config::embedded().dispatch.concurrency;
    let (own, ticks) = (super::cpu::used(), machine_ticks());
    let started = Instant::now();
    let failures = futures::stream::iter(0..n)
        .map(|i| {
            let p = provider.clone();
            async move { p.send(&email_message(i)).await.is_err() }
        })
        .buffer_unordered(concurrency)
        .filter(|failed| futures::future::ready(*failed))
        .count()
        .await;
    if failures > 0 {
        anyhow::bail!("{failures} of {n} bare SMTP sends failed");
    }
    r.email_bare_mps = Some(n as f64 / started.elapsed().as_secs_f64());
    r.email_bare_cpu_us = Some(super::cpu::micros_per(own, n));
    r.email_bare_idle_pct = idle_since(ticks);
    drop(provider);

    // Loa end to end: n parents with an email address, one campaign, the real daemon.
    let mut cfg = config(super::database_url(opts, &dir).await?);
    let (host, port_) = ("127.0.0.1".to_string(), port);
    cfg.providers.insert(
        "smtp".into(),
        ProviderConfig {
            kind: ProviderKind::Smtp {
                host,
                port: port_,
                tls: TlsMode::None,
                username: None,
                password: None,
                password_file: None,
                from: FROM.into(),
                pool_size: EMAIL_POOL,
                timeout_seconds: 30,
            },
            rate_per_second: None,
            burst: None,
            unaccent: false,
            max_segments: None,
        },
    );
    cfg.channels.insert(Channel::Email, "smtp".into());
    let app = App::build(&cfg).await?;
    let store = app.state.store.clone();
    let d = seed::district(&store, 1, 1, now_ms()).await?;
    let school = d.classes[0].1;
    let mut roster = String::from("student_name,student_code,class,parent_name,parent_email\n");
    for i in 0..n {
        roster.push_str(&format!(
            "Học Sinh {i},HS{i:07},1A,Phụ Huynh {i},ph{i}@example.vn\n"
        ));
    }
    let imported = crate::import::import_file(
        store.as_ref(),
        school,
        roster.as_bytes(),
        &Default::default(),
        |_, _| {},
    )
    .await?;
    if imported.imported != n {
        anyhow::bail!("{} of {n} bench parents imported", imported.imported);
    }
    // SAFETY: sync(2) takes no arguments and only flushes kernel buffers.
    unsafe { libc::sync() };
    let bodies = TemplateBodies {
        email_subject: Some(SUBJECT.into()),
        email_text: Some(EMAIL_TEXT.into()),
        ..Default::default()
    };
    let c = campaign(&store, school, bodies, Channel::Email, "email").await?;
    let took = run_to_done(app, c, Duration::from_secs(1800)).await?;
    r.email_loa_mps = Some(n as f64 / took.as_secs_f64());
    r.email_loa_to_source = r.email_loa_mps.zip(r.smtp_source_mps).map(|(l, s)| l / s);
    r.email_bare_to_source = r.email_bare_mps.zip(r.smtp_source_mps).map(|(b, s)| b / s);
    Ok(())
}

fn config(db_url: String) -> Config {
    let mut cfg = Config::embedded();
    cfg.database.url = db_url;
    cfg.server.listen = "127.0.0.1:0".parse().expect("static address");
    cfg.schedule.quiet_hours = String::new();
    cfg
}

/// An approved campaign from `org` to its parents on one channel.
async fn campaign(
    store: &Arc<dyn Store>,
    org: i64,
    bodies: TemplateBodies,
    channel: Channel,
    name: &str,
) -> anyhow::Result<i64> {
    let audience = Audience {
        org_id: org,
        roles: vec![Role::Parent],
        class_ids: vec![],
    };
    approved_campaign(store, org, audience, bodies, channel, name).await
}

/// A running Kannel: bearerbox, the fake SMSC (which produces the delivery reports) and smsbox.
struct Kannel {
    procs: Vec<Proc>,
    base_url: String,
}

impl Kannel {
    /// CPU time Kannel's processes have used so far.
    fn cpu_used(&self) -> Option<Duration> {
        self.procs
            .iter()
            .map(|p| super::cpu::of_process(p.0.id()))
            .sum()
    }
}

/// The machine's idle and total CPU ticks so far, from the first line of /proc/stat.
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let v: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait ...: idle and iowait are the time nothing ran.
    Some((v.get(3)? + v.get(4)?, v.iter().sum()))
}

/// The share of the machine's CPU left idle since `before` (a `machine_ticks` reading), in %.
fn idle_since(before: Option<(u64, u64)>) -> Option<f64> {
    let ((i0, t0), (i1, t1)) = before.zip(machine_ticks())?;
    (t1 > t0).then(|| i1.saturating_sub(i0) as f64 * 100.0 / (t1 - t0) as f64)
}

/// What one phase of part 8 cost: the rate, this process's and Kannel's CPU per message, and how
/// idle the machine was meanwhile.
struct Phase {
    rate: f64,
    own_us: f64,
    kannel_us: Option<f64>,
    idle_pct: Option<f64>,
}

async fn phase<F: std::future::Future<Output = anyhow::Result<Duration>>>(
    k: &Kannel,
    n: usize,
    work: F,
) -> anyhow::Result<Phase> {
    let (own, theirs, ticks) = (super::cpu::used(), k.cpu_used(), machine_ticks());
    let took = work.await?;
    let idle_pct = idle_since(ticks);
    Ok(Phase {
        rate: n as f64 / took.as_secs_f64(),
        own_us: super::cpu::micros_per(own, n),
        kannel_us: theirs
            .zip(k.cpu_used())
            .map(|(a, b)| b.saturating_sub(a).as_secs_f64() * 1e6 / n.max(1) as f64),
        idle_pct,
    })
}

/// Started as docs/LOCAL-PEERS.md describes, on free ports, logging to `dir`.
async fn kannel(dir: &Path) -> anyhow::Result<Kannel> {
    let (admin, smsbox, sendsms, smsc) = (free_port()?, free_port()?, free_port()?, free_port()?);
    let d = dir.display();
    let conf = dir.join("kannel.conf");
    std::fs::write(
        &conf,
        format!(
            r#"group = core
admin-port = {admin}
admin-interface = 127.0.0.1
admin-password = bench
status-password = bench
admin-allow-ip = "127.0.0.1"
smsbox-port = {smsbox}
smsbox-interface = 127.0.0.1
box-allow-ip = "127.0.0.1"
log-file = "{d}/bearerbox.log"
log-level = 2
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
log-level = 2

group = sendsms-user
username = bench
password = bench
max-messages = 10

group = sms-service
keyword = default
text = "No service specified"
catch-all = true
"#
        ),
    )?;
    let mut procs = vec![spawn(
        Command::new(BEARERBOX).args(["-v", "2"]).arg(&conf),
        "bearerbox",
    )?];
    wait_port(admin, "bearerbox").await?;
    wait_port(smsc, "bearerbox's fake SMSC listener").await?;
    procs.push(spawn(
        Command::new(FAKESMSC).args([
            "-H",
            "127.0.0.1",
            "-r",
            &smsc.to_string(),
            "-m",
            "0",
            "1 2 text x",
        ]),
        "fakesmsc",
    )?);
    tokio::time::sleep(Duration::from_secs(1)).await;
    procs.push(spawn(
        Command::new(SMSBOX).args(["-v", "2"]).arg(&conf),
        "smsbox",
    )?);
    wait_port(sendsms, "smsbox").await?;
    // smsbox opens its port before its link to bearerbox is up; the first requests would get 503.
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(Kannel {
        procs,
        base_url: format!("http://127.0.0.1:{sendsms}"),
    })
}

fn kannel_settings(base_url: &str) -> KannelSettings {
    KannelSettings {
        base_url: base_url.into(),
        username: "bench".into(),
        password: "bench".into(),
        from: Some("LOA".into()),
        smsc: None,
        timeout: Duration::from_secs(10),
    }
}

/// wrk's requests per second at `connections`, or None when wrk is not installed.
fn wrk(url: &str, connections: usize) -> anyhow::Result<Option<f64>> {
    let out = match Command::new("wrk")
        .args(["-t", "2", "-c", &connections.to_string(), "-d", "5s", url])
        .stderr(Stdio::null())
        .output()
    {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("wrk said {text:?}"))?;
    Ok(Some(rps))
}

/// Part 8: Kannel with delivery reports at concurrency 8: wrk, the bare adapter, Loa end to end.
pub async fn sms_kannel(
    opts: &BenchOptions,
    double: &super::double::Double,
    r: &mut Report,
) -> anyhow::Result<()> {
    if !installed(&[BEARERBOX, SMSBOX, FAKESMSC]) {
        eprintln!(
            "bench: 8 SKIPPED: Kannel is not installed (apt-get install kannel kannel-extras); \
             no Kannel figures"
        );
        return Ok(());
    }
    let n = opts.real_people;
    let dir = fresh_dir(&opts.dir, "kannel")?;
    let k = kannel(&dir).await?;
    let text = super::SMS
        .replace("{{ sender_name }}", "PGD-BENCH")
        .replace("{{ student_names }}", "Học Sinh 12345");
    // UCS-2 in two parts, as Loa sends it: Kannel's work per message depends on both.
    let shape = crate::render::sms::shape(&text);
    // The delivery reports of wrk's and the bare client's requests go to the double, which answers
    // each at once; Loa's go to Loa, as in production. Same URL shape and length as Loa's.
    let callback = format!(
        "{}/count?id=1&sig=0123456789abcdef0123456789abcdef",
        double.base_url
    );
    let query = serde_urlencoded::to_string([
        ("username", "bench"),
        ("password", "bench"),
        ("to", "84910000001"),
        ("text", text.as_str()),
        ("charset", "UTF-8"),
        ("coding", if shape.ucs2 { "2" } else { "0" }),
        ("from", "LOA"),
        ("dlr-mask", "31"),
        ("dlr-url", &format!("{callback}&type=%d&reply=%A")),
    ])?;
    r.kannel_wrk_rps = wrk(
        &format!("{}/cgi-bin/sendsms?{query}", k.base_url),
        SMS_CONCURRENCY,
    )?;
    if r.kannel_wrk_rps.is_none() {
        eprintln!("bench: 8 wrk is not installed (apt-get install wrk); only the bare client");
    }

    let provider = Arc::new(
        KannelProvider::new("bare", kannel_settings(&k.base_url)).map_err(anyhow::Error::msg)?,
    );
    let bare = phase(
        &k,
        n,
        super::send_all(&provider, &text, n, SMS_CONCURRENCY, &callback),
    )
    .await?;
    r.kannel_bare_rps = Some(bare.rate);
    r.kannel_bare_cpu_us = Some(bare.own_us);
    r.kannel_bare_kannel_cpu_us = bare.kannel_us;
    r.kannel_bare_idle_pct = bare.idle_pct;
    drop(provider);

    let mut cfg = config(super::database_url(opts, &dir).await?);
    cfg.dispatch.concurrency = SMS_CONCURRENCY;
    cfg.providers.insert(
        "gateway".into(),
        ProviderConfig {
            kind: ProviderKind::Kannel {
                base_url: k.base_url.clone(),
                username: "bench".into(),
                password: Some(serde_json::from_str("\"bench\"")?),
                password_file: None,
                from: Some("LOA".into()),
                smsc: None,
                timeout_seconds: 10,
            },
            rate_per_second: None,
            burst: None,
            unaccent: false,
            max_segments: None,
        },
    );
    cfg.channels.insert(Channel::Sms, "gateway".into());
    let app = App::build(&cfg).await?;
    let store = app.state.store.clone();
    let d = seed::district(&store, 2, 10, now_ms()).await?;
    seed::parents(&store, &d, n, true, now_ms()).await?;
    // SAFETY: sync(2) takes no arguments and only flushes kernel buffers.
    unsafe { libc::sync() };
    let bodies = TemplateBodies {
        sms_text: Some(super::SMS.into()),
        ..Default::default()
    };
    let c = campaign(&store, d.district, bodies, Channel::Sms, "kannel").await?;
    let loa = phase(&k, n, run_to_done(app, c, Duration::from_secs(1800))).await?;
    r.kannel_loa_mps = Some(loa.rate);
    r.kannel_loa_cpu_us = Some(loa.own_us);
    r.kannel_loa_kannel_cpu_us = loa.kannel_us;
    r.kannel_loa_idle_pct = loa.idle_pct;
    r.kannel_loa_to_wrk = r.kannel_loa_mps.zip(r.kannel_wrk_rps).map(|(l, w)| l / w);
    r.kannel_loa_to_bare = r.kannel_loa_mps.zip(r.kannel_bare_rps).map(|(l, b)| l / b);
    Ok(())
}
