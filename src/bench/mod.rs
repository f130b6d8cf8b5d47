//! `loa bench`: how close the dispatcher runs to the machine's own limit and what a large audience
//! costs. Parts 1-6 against Loa's own provider double (ceiling, end to end, fan-out + memory,
//! rate-limit accuracy, urgent latency, preview), 7 and 8 against real servers when installed (email
//! into Postfix's smtp-sink, SMS through Kannel), printed as a table and written as JSON. A measuring
//! instrument, never a test.

pub mod cpu;
pub mod double;
pub mod import;
pub mod real;
pub mod rss;
pub mod seed;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use providers::kannel::{KannelProvider, KannelSettings};
use providers::{Channel, Message, Provider};
use serde::Serialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::approval;
use crate::audience::fan_out;
use crate::clock::now_ms;
use crate::config::{Config, ProviderConfig, ProviderKind};
use crate::domain::access::{Principal, UserRole};
use crate::domain::campaign::{Audience, CampaignState, NewCampaign, NewTemplate, TemplateBodies};
use crate::domain::contact::Role;
use crate::store::Store;
use double::Double;

pub struct BenchOptions {
    pub people: usize,
    pub fanout_people: usize,
    pub rate_seconds: u64,
    pub urgent: usize,
    /// Audience size for the reach-and-cost preview.
    pub preview_people: usize,
    /// Messages (and people) in each run of parts 7 and 8.
    pub real_people: usize,
    /// Students in part 9's roster export.
    pub import_rows: usize,
    pub dir: PathBuf,
    pub json: Option<PathBuf>,
    pub parts: Vec<u8>,
    /// A PostgreSQL server to measure on (each part in a schema of its own), instead of SQLite
    /// files under `dir`.
    pub database: Option<String>,
}

/// Where a part's fresh database lives: a SQLite file in its folder, or a new schema on the
/// PostgreSQL server `--database` names (schemas of earlier benchmark runs are dropped first).
pub(crate) async fn database_url(
    opts: &BenchOptions,
    dir: &std::path::Path,
) -> anyhow::Result<String> {
    let Some(base) = &opts.database else {
        return Ok(format!("sqlite://{}", dir.join("loa.db").display()));
    };
    let name = dir
        .file_name()
        .map(|n| {
            n.to_string_lossy()
                .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        })
        .unwrap_or_default();
    let schema = format!("loa_bench_{name}");
    let pool = sqlx::PgPool::connect(base).await?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&pool)
        .await?;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&pool)
        .await?;
    pool.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    Ok(format!("{base}{sep}options[search_path]={schema}"))
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub cores: usize,
    pub concurrency: usize,
    pub people: usize,
    pub ceiling_rps: Option<f64>,
    pub loa_mps: Option<f64>,
    pub loa_to_ceiling: Option<f64>,
    /// CPU time of the bench process per request in part 1 (the bare client) and per message in
    /// part 2 (all of Loa); the double's CPU is in neither.
    pub ceiling_cpu_us: Option<f64>,
    pub loa_cpu_us: Option<f64>,
    /// The double's own CPU per request in parts 1 and 2 (from /proc), which both sides pay.
    pub ceiling_double_cpu_us: Option<f64>,
    pub loa_double_cpu_us: Option<f64>,
    /// CPU per request of the bare client and the double over CPU per message of Loa and the double:
    /// the ratio both sides would reach with every core busy, steadier than the rates on a noisy machine.
    pub cpu_ratio: Option<f64>,
    pub fanout_people: usize,
    pub fanout_deliveries: Option<u64>,
    pub fanout_seconds: Option<f64>,
    pub full_run_mps: Option<f64>,
    pub peak_rss_mib: Option<f64>,
    pub rate_quota: u32,
    pub rate_burst: u32,
    pub rate_sent: Option<usize>,
    pub rate_measured: Option<f64>,
    pub rate_error_pct: Option<f64>,
    pub rate_max_in_100ms: Option<usize>,
    /// Where the densest window starts, ms after the first arrival.
    pub rate_max_window_at_ms: Option<f64>,
    /// Part 10: the end-to-end run of part 2 by two instances on one database (two stores, two
    /// dispatchers, one provider), combined messages per second, and over part 2's one instance.
    pub two_instances_mps: Option<f64>,
    pub two_to_one: Option<f64>,
    pub urgent_count: usize,
    pub urgent_p50_ms: Option<f64>,
    pub urgent_p99_ms: Option<f64>,
    pub urgent_max_ms: Option<f64>,
    pub preview_people: usize,
    pub preview_ms: Option<f64>,
    /// Part 7: messages per second into smtp-sink from smtp-source over `real::EMAIL_POOL`
    /// connections, from the bare SMTP provider, and from Loa end to end; the size of the message.
    pub real_people: usize,
    pub email_bytes: Option<usize>,
    pub smtp_source_mps: Option<f64>,
    pub email_bare_mps: Option<f64>,
    pub email_loa_mps: Option<f64>,
    pub email_bare_to_source: Option<f64>,
    pub email_loa_to_source: Option<f64>,
    /// This process's CPU per message in the bare SMTP run, and the machine's idle share meanwhile.
    pub email_bare_cpu_us: Option<f64>,
    pub email_bare_idle_pct: Option<f64>,
    /// Part 8: requests per second into a real Kannel at `real::SMS_CONCURRENCY` from wrk and from
    /// the bare Kannel adapter, and Loa's messages per second end to end at that concurrency.
    pub kannel_wrk_rps: Option<f64>,
    pub kannel_bare_rps: Option<f64>,
    pub kannel_loa_mps: Option<f64>,
    pub kannel_loa_to_wrk: Option<f64>,
    pub kannel_loa_to_bare: Option<f64>,
    /// Part 8, the bare client's run and Loa's: this process's CPU per message, Kannel's (bearerbox,
    /// smsbox, fake SMSC) per message, and the share of the machine's CPU left idle.
    pub kannel_bare_cpu_us: Option<f64>,
    pub kannel_loa_cpu_us: Option<f64>,
    pub kannel_bare_kannel_cpu_us: Option<f64>,
    pub kannel_loa_kannel_cpu_us: Option<f64>,
    pub kannel_bare_idle_pct: Option<f64>,
    pub kannel_loa_idle_pct: Option<f64>,
    /// Part 9: a roster export of `import_rows` rows (`import_students` students, an XLSX of this
    /// size), imported by `loa import contacts` as a dry run, for real, and again: wall seconds and
    /// the CLI process's peak RSS for each.
    pub import_rows: usize,
    pub import_students: usize,
    pub import_file_mib: Option<f64>,
    pub import_dry_s: Option<f64>,
    pub import_first_s: Option<f64>,
    pub import_again_s: Option<f64>,
    pub import_dry_peak_mib: Option<f64>,
    pub import_first_peak_mib: Option<f64>,
    pub import_again_peak_mib: Option<f64>,
}

const SMS: &str = "{{ sender_name }}: PH em {{ student_names }} luu y: khong chia se mat khau, anh rieng tu cua con tren mang.";

fn bench_config(db_url: String, double: &Double, rate: Option<u32>, burst: Option<u32>) -> Config {
    let mut cfg = Config::embedded();
    cfg.database.url = db_url;
    cfg.server.listen = "127.0.0.1:0".parse().expect("static address");
    // Measured at any hour: quiet hours would hold every SMS of a night-time run.
    cfg.schedule.quiet_hours = String::new();
    cfg.providers.insert(
        "gateway".into(),
        ProviderConfig {
            kind: ProviderKind::Kannel {
                base_url: double.base_url.clone(),
                username: "bench".into(),
                password: None,
                password_file: None,
                from: Some("LOA".into()),
                smsc: None,
                timeout_seconds: 10,
            },
            rate_per_second: rate,
            burst,
            unaccent: false,
            max_segments: None,
        },
    );
    cfg.channels.insert(Channel::Sms, "gateway".into());
    cfg
}

fn fresh_dir(base: &std::path::Path, name: &str) -> anyhow::Result<PathBuf> {
    let d = base.join(name);
    if d.exists() {
        std::fs::remove_dir_all(&d)?;
    }
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

/// The benchmark's author and approver (operators), created on first use in each database.
async fn bench_users(store: &Arc<dyn Store>) -> anyhow::Result<(Principal, Principal)> {
    let mut out = Vec::new();
    for (name, role) in [
        ("bench-author", UserRole::Author),
        ("bench-approver", UserRole::Approver),
    ] {
        let p = match store.user_by_name(name).await {
            Ok(u) => Principal::of(&u, ""),
            Err(_) => approval::tool_user(store.as_ref(), None, name, name, &[role]).await?,
        };
        out.push(p);
    }
    let approver = out.pop().ok_or_else(|| anyhow::anyhow!("no approver"))?;
    let author = out.pop().ok_or_else(|| anyhow::anyhow!("no author"))?;
    Ok((author, approver))
}

/// An approved campaign from the district to the parents of `audience` (its subtree), on SMS.
async fn sms_campaign(
    store: &Arc<dyn Store>,
    org: i64,
    audience: Audience,
    name: &str,
) -> anyhow::Result<i64> {
    let bodies = TemplateBodies {
        sms_text: Some(SMS.into()),
        ..Default::default()
    };
    approved_campaign(store, org, audience, bodies, Channel::Sms, name).await
}

/// An approved campaign from `org` to `audience` on one channel, with a template of these bodies.
async fn approved_campaign(
    store: &Arc<dyn Store>,
    org: i64,
    audience: Audience,
    bodies: TemplateBodies,
    channel: Channel,
    name: &str,
) -> anyhow::Result<i64> {
    let tpl = store
        .create_template(
            &NewTemplate {
                org_id: org,
                name: name.into(),
                bodies,
            },
            None,
            now_ms(),
        )
        .await?;
    let c = NewCampaign {
        org_id: org,
        name: name.into(),
        template_id: tpl.id,
        audience,
        channels: vec![channel],
        ..Default::default()
    };
    let (author, approver) = bench_users(store).await?;
    let id = store
        .create_campaign(&c, Some(author.user_id), now_ms())
        .await?
        .id;
    approval::submit(store.as_ref(), &author, id).await?;
    approval::approve(store.as_ref(), &approver, id, None).await?;
    Ok(id)
}

async fn wait_done(store: &Arc<dyn Store>, campaign: i64, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if store.get_campaign(campaign).await?.state == CampaignState::Done {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::bail!("campaign {campaign} did not finish within {limit:?}")
}

/// A fresh database (WAL, on disk) under `name`, with `parents` parents seeded over `schools` schools
/// of `classes` classes each, and the app built on it (not yet running).
async fn seeded(
    opts: &BenchOptions,
    double: &Double,
    name: &str,
    limit: (Option<u32>, Option<u32>),
    (schools, classes): (usize, usize),
    parents: usize,
    siblings: bool,
) -> anyhow::Result<(App, seed::District)> {
    let dir = fresh_dir(&opts.dir, name)?;
    let url = database_url(opts, &dir).await?;
    let app = App::build(&bench_config(url, double, limit.0, limit.1)).await?;
    let store = app.state.store.clone();
    let d = seed::district(&store, schools, classes, now_ms()).await?;
    seed::parents(&store, &d, parents, siblings, now_ms()).await?;
    // The seeding wrote up to hundreds of megabytes the kernel may still be flushing; each part is
    // timed on a database at rest, not against that writeback.
    // SAFETY: sync(2) takes no arguments and only flushes kernel buffers.
    unsafe { libc::sync() };
    Ok((app, d))
}

/// An SMS campaign from the district to all its parents.
async fn all_parents_campaign(
    store: &Arc<dyn Store>,
    d: &seed::District,
    name: &str,
) -> anyhow::Result<i64> {
    let audience = Audience {
        org_id: d.district,
        roles: vec![Role::Parent],
        class_ids: vec![],
    };
    sms_campaign(store, d.district, audience, name).await
}

/// Runs the daemon, starts campaign `c` as the API would, waits until it is done, stops the daemon;
/// returns the time from start to done.
async fn run_to_done(app: App, c: i64, limit: Duration) -> anyhow::Result<Duration> {
    let state = app.state.clone();
    let shutdown = CancellationToken::new();
    let running = app.spawn(shutdown.clone());
    let started = Instant::now();
    let (author, _) = bench_users(&state.store).await?;
    approval::start(state.store.as_ref(), &state.scheduler_wake, &author, c).await?;
    wait_done(&state.store, c, limit).await?;
    let took = started.elapsed();
    shutdown.cancel();
    running.join().await?;
    Ok(took)
}

/// What a part cost: items per second, this process's CPU per item, the double's CPU per item.
struct Cost {
    rate: f64,
    own_us: f64,
    double_us: Option<f64>,
}

/// Times `items` items of work done by `work`, with this process's and the double's CPU.
async fn costed<F: std::future::Future<Output = anyhow::Result<Duration>>>(
    double: &Double,
    items: usize,
    work: F,
) -> anyhow::Result<Cost> {
    let (own, theirs) = (cpu::used(), double.cpu_used());
    let took = work.await?;
    Ok(Cost {
        rate: items as f64 / took.as_secs_f64(),
        own_us: cpu::micros_per(own, items),
        double_us: cpu::micros_between(theirs, double.cpu_used(), items),
    })
}

/// Part 1: the same adapter and requests without Loa: a bare client at the same concurrency.
async fn ceiling(double: &Double, n: usize, concurrency: usize) -> anyhow::Result<Cost> {
    let provider = Arc::new(
        KannelProvider::new(
            "ceiling",
            KannelSettings {
                base_url: double.base_url.clone(),
                username: "bench".into(),
                password: String::new(),
                from: Some("LOA".into()),
                smsc: None,
                timeout: Duration::from_secs(10),
            },
        )
        .map_err(anyhow::Error::msg)?,
    );
    let text = SMS
        .replace("{{ sender_name }}", "PGD-BENCH")
        .replace("{{ student_names }}", "Học Sinh 12345");
    // The same request Loa sends, delivery-report URL included (its signature is Loa's own work, so
    // a fixed one stands in for it here).
    let callback =
        "http://127.0.0.1:40000/webhooks/gateway?id=1&sig=0123456789abcdef0123456789abcdef";
    costed(
        double,
        n,
        send_all(&provider, &text, n, concurrency, callback),
    )
    .await
}

/// Sends `n` requests through the adapter at `concurrency`, as the dispatcher would, each with a
/// delivery-report URL like `callback` (the delivery id in place of its `id=1`); how long it took.
async fn send_all(
    provider: &Arc<KannelProvider>,
    text: &str,
    n: usize,
    concurrency: usize,
    callback: &str,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let failures = futures::stream::iter(0..n)
        .map(|i| {
            let p = provider.clone();
            let mut msg = Message::new(
                i.to_string(),
                Channel::Sms,
                format!("+8491{i:07}"),
                text.to_string(),
            );
            msg.callback_url = Some(callback.replace("id=1&", &format!("id={}&", i + 1)));
            // The coding Loa's SMS shaping picks for this text (UCS-2 for Vietnamese diacritics).
            msg.sms = Some(crate::render::sms::shape(text));
            async move { p.send(&msg).await.is_err() }
        })
        .buffer_unordered(concurrency)
        .filter(|failed| futures::future::ready(*failed))
        .count()
        .await;
    if failures > 0 {
        anyhow::bail!("{failures} ceiling requests failed");
    }
    Ok(started.elapsed())
}

/// Part 2: N people end to end through the real dispatcher, every state change persisted.
async fn end_to_end(opts: &BenchOptions, double: &Double) -> anyhow::Result<Cost> {
    let (app, d) = seeded(
        opts,
        double,
        "e2e",
        (None, None),
        (20, 10),
        opts.people,
        true,
    )
    .await?;
    let c = all_parents_campaign(&app.state.store, &d, "e2e").await?;
    costed(
        double,
        opts.people,
        run_to_done(app, c, Duration::from_secs(1800)),
    )
    .await
}

/// Part 10: part 2's campaign sent by two instances sharing one database (each its own store handle,
/// heartbeat and dispatcher, as two `loa serve` would be); combined messages per second.
async fn two_instances(opts: &BenchOptions, double: &Double) -> anyhow::Result<f64> {
    let (first, d) = seeded(
        opts,
        double,
        "two",
        (None, None),
        (20, 10),
        opts.people,
        true,
    )
    .await?;
    let c = all_parents_campaign(&first.state.store, &d, "two").await?;
    let url = first.database_url.clone();
    let second = App::build(&bench_config(url, double, None, None)).await?;
    let shutdown = CancellationToken::new();
    let running_second = second.spawn(shutdown.clone());
    let took = run_to_done(first, c, Duration::from_secs(1800)).await?;
    shutdown.cancel();
    running_second.join().await?;
    Ok(opts.people as f64 / took.as_secs_f64())
}

/// Part 3: fan-out of a large audience, then the whole run, with the process's peak memory.
async fn fanout(opts: &BenchOptions, double: &Double, r: &mut Report) -> anyhow::Result<()> {
    let (app, d) = seeded(
        opts,
        double,
        "fanout",
        (None, None),
        (50, 20),
        opts.fanout_people,
        true,
    )
    .await?;
    let store = app.state.store.clone();
    let c = all_parents_campaign(&store, &d, "fanout").await?;
    rss::reset_peak();
    let started = Instant::now();
    // The campaign is approved; the fan-out is timed on its own, so the run is created here rather
    // than by `start` and the scheduler.
    if !store
        .transition_campaign(
            c,
            &[CampaignState::Approved],
            CampaignState::Running,
            now_ms(),
        )
        .await?
    {
        anyhow::bail!("the fan-out campaign is not approved");
    }
    let run = store.create_run(c, "once", now_ms()).await?;
    let campaign = store.get_campaign(c).await?;
    r.fanout_deliveries = Some(fan_out(&store, run, &campaign, &Notify::new()).await?);
    r.fanout_seconds = Some(started.elapsed().as_secs_f64());
    let shutdown = CancellationToken::new();
    let running = app.spawn(shutdown.clone());
    let run_started = Instant::now();
    wait_done(&store, c, Duration::from_secs(3600)).await?;
    r.full_run_mps = Some(opts.fanout_people as f64 / run_started.elapsed().as_secs_f64());
    shutdown.cancel();
    running.join().await?;
    r.peak_rss_mib = rss::peak_rss_kib().map(|k| k as f64 / 1024.0);
    Ok(())
}

/// Part 4: a provider limited to `quota`/s: the rate the double saw and its densest 100 ms.
async fn rate_limit(opts: &BenchOptions, double: &Double, r: &mut Report) -> anyhow::Result<()> {
    let n = r.rate_quota as usize * opts.rate_seconds as usize;
    let limit = (Some(r.rate_quota), Some(r.rate_burst));
    let (app, d) = seeded(opts, double, "rate", limit, (1, 10), n, true).await?;
    let c = all_parents_campaign(&app.state.store, &d, "rate").await?;
    let before = double.count().await?;
    run_to_done(app, c, Duration::from_secs(opts.rate_seconds * 3 + 60)).await?;
    let mut t = double.arrivals(before).await?;
    t.sort_unstable();
    r.rate_sent = Some(t.len());
    if t.len() > 1 {
        // Up to `burst` may leave at once at the start; from there on the quota paces every send, so
        // the rate is measured from the `burst`-th arrival to the last.
        let b = (r.rate_burst as usize).min(t.len() - 2);
        let span = (t[t.len() - 1] - t[b]) as f64 / 1e9;
        let measured = (t.len() - 1 - b) as f64 / span;
        r.rate_measured = Some(measured);
        r.rate_error_pct = Some((measured / r.rate_quota as f64 - 1.0) * 100.0);
        let (mut best, mut best_at) = (0, 0);
        let mut lo = 0;
        for hi in 0..t.len() {
            while t[hi] - t[lo] >= 100_000_000 {
                lo += 1;
            }
            if hi - lo + 1 > best {
                (best, best_at) = (hi - lo + 1, t[lo] - t[0]);
            }
        }
        r.rate_max_in_100ms = Some(best);
        r.rate_max_window_at_ms = Some(best_at as f64 / 1e6);
    }
    Ok(())
}

/// Part 6: the reach-and-cost preview of a campaign to every parent of a district (each parent's SMS
/// rendered to count its parts), as staff call it before submitting.
async fn preview(opts: &BenchOptions, double: &Double, r: &mut Report) -> anyhow::Result<()> {
    let (app, d) = seeded(
        opts,
        double,
        "preview",
        (None, None),
        (10, 20),
        opts.preview_people,
        true,
    )
    .await?;
    let store = app.state.store.clone();
    let c = all_parents_campaign(&store, &d, "preview").await?;
    let campaign = store.get_campaign(c).await?;
    let prices = crate::config::Prices {
        sms_segment: 800.0,
        ..Default::default()
    };
    let started = Instant::now();
    let p = crate::preview::preview(store.as_ref(), &campaign, false, &prices).await?;
    r.preview_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
    r.preview_people = p.people as usize;
    Ok(())
}

/// Part 5: single-person campaigns one after another on an idle daemon, through the HTTP API.
async fn urgent(opts: &BenchOptions, double: &Double, r: &mut Report) -> anyhow::Result<()> {
    // One parent per class, no siblings: each class campaign reaches exactly one person. The
    // dispatcher keeps its default one-second backstop poll, so a dispatcher that only polled shows.
    let (app, d) = seeded(
        opts,
        double,
        "urgent",
        (None, None),
        (1, opts.urgent),
        opts.urgent,
        false,
    )
    .await?;
    let store = app.state.store.clone();
    let mut campaigns = Vec::new();
    for (i, (class, _)) in d.classes.iter().enumerate() {
        let audience = Audience {
            org_id: d.district,
            roles: vec![Role::Parent],
            class_ids: vec![*class],
        };
        campaigns.push(sms_campaign(&store, d.district, audience, &format!("urgent {i}")).await?);
    }
    let base = app.base_url();
    let shutdown = CancellationToken::new();
    let running = app.spawn(shutdown.clone());
    let http = reqwest::Client::new();
    let (author, _) = bench_users(&store).await?;
    let (_, token) =
        crate::api::users::create_token(store.as_ref(), author.user_id, "bench").await?;
    tokio::time::sleep(Duration::from_millis(1500)).await; // idle: nothing pending, the dispatcher asleep
    let before = double.count().await?;
    let mut returned = Vec::new();
    for c in &campaigns {
        let resp = http
            .post(format!("{base}/api/v1/campaigns/{c}/start"))
            .bearer_auth(&token)
            .send()
            .await?;
        if !resp.status().is_success() {
            anyhow::bail!("start {c}: {}", resp.status());
        }
        returned.push(double::unix_ns());
        // Long enough that each message has arrived before the next start (p99 is a few ms).
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for c in &campaigns {
        wait_done(&store, *c, Duration::from_secs(30)).await?;
    }
    shutdown.cancel();
    running.join().await?;
    let mut arrived = double.arrivals(before).await?;
    arrived.sort_unstable();
    if arrived.len() != returned.len() {
        anyhow::bail!(
            "{} urgent messages reached the double, expected {}",
            arrived.len(),
            returned.len()
        );
    }
    // Sent one at a time, so the i-th arrival belongs to the i-th start. An arrival before the API
    // call returned counts as zero.
    let mut lat: Vec<f64> = arrived
        .iter()
        .zip(&returned)
        .map(|(a, r)| ((a - r) as f64 / 1e6).max(0.0))
        .collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1];
    r.urgent_count = lat.len();
    r.urgent_p50_ms = Some(pct(0.50));
    r.urgent_p99_ms = Some(pct(0.99));
    r.urgent_max_ms = lat.last().copied();
    Ok(())
}

fn fmt(v: Option<f64>, digits: usize) -> String {
    v.map(|v| format!("{v:.digits$}"))
        .unwrap_or_else(|| "-".into())
}

pub fn table(r: &Report) -> String {
    let ok = |b: Option<bool>| match b {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "-",
    };
    let rows = [
        (
            "1 ceiling (bare client)",
            format!("{} req/s", fmt(r.ceiling_rps, 0)),
            String::new(),
            "-",
        ),
        (
            "2 Loa end to end",
            format!("{} msg/s ({} people)", fmt(r.loa_mps, 0), r.people),
            ">= 10000 msg/s".into(),
            ok(r.loa_mps.map(|m| m >= 10_000.0)),
        ),
        (
            "2 ratio to ceiling",
            fmt(r.loa_to_ceiling, 2),
            ">= 0.50".into(),
            ok(r.loa_to_ceiling.map(|x| x >= 0.5)),
        ),
        (
            "1/2 CPU per message",
            format!(
                "{} us bare client, {} us Loa",
                fmt(r.ceiling_cpu_us, 1),
                fmt(r.loa_cpu_us, 1)
            ),
            String::new(),
            "-",
        ),
        (
            "1/2 double's CPU",
            format!(
                "{} us a request (1), {} (2)",
                fmt(r.ceiling_double_cpu_us, 1),
                fmt(r.loa_double_cpu_us, 1)
            ),
            String::new(),
            "-",
        ),
        ("2 ratio by CPU", fmt(r.cpu_ratio, 2), String::new(), "-"),
        (
            "10 two instances",
            format!(
                "{} msg/s combined ({} of one)",
                fmt(r.two_instances_mps, 0),
                fmt(r.two_to_one, 2)
            ),
            ">= 1.00 of one".into(),
            ok(r.two_to_one.map(|x| x >= 1.0)),
        ),
        (
            "3 fan-out",
            format!(
                "{} s ({} deliveries)",
                fmt(r.fanout_seconds, 2),
                r.fanout_deliveries
                    .map(|d| d.to_string())
                    .unwrap_or("-".into())
            ),
            "<= 10 s".into(),
            ok(r.fanout_seconds.map(|s| s <= 10.0)),
        ),
        (
            "3 full run",
            format!("{} msg/s", fmt(r.full_run_mps, 0)),
            String::new(),
            "-",
        ),
        (
            "3 peak RSS (VmHWM)",
            format!("{} MiB", fmt(r.peak_rss_mib, 1)),
            "<= 64 MiB".into(),
            ok(r.peak_rss_mib.map(|m| m <= 64.0)),
        ),
        (
            "4 rate limit",
            format!(
                "{} msg/s ({} % off {}/s)",
                fmt(r.rate_measured, 1),
                fmt(r.rate_error_pct, 2),
                r.rate_quota
            ),
            "within 2 %".into(),
            ok(r.rate_error_pct.map(|e| e.abs() <= 2.0)),
        ),
        (
            "4 max in any 100 ms",
            r.rate_max_in_100ms
                .map(|m| m.to_string())
                .unwrap_or("-".into()),
            format!("<= burst {}", r.rate_burst),
            ok(r.rate_max_in_100ms.map(|m| m <= r.rate_burst as usize)),
        ),
        (
            "6 preview (reach, cost)",
            format!("{} ms ({} people)", fmt(r.preview_ms, 0), r.preview_people),
            "< 1000 ms".into(),
            ok(r.preview_ms.map(|m| m < 1000.0)),
        ),
        (
            "5 urgent p50 / p99",
            format!(
                "{} / {} ms (max {})",
                fmt(r.urgent_p50_ms, 2),
                fmt(r.urgent_p99_ms, 2),
                fmt(r.urgent_max_ms, 2)
            ),
            "p99 <= 20 ms".into(),
            ok(r.urgent_p99_ms.map(|p| p <= 20.0)),
        ),
    ];
    let rows = rows.into_iter().chain([
        (
            "7 smtp-source (4 conns)",
            format!(
                "{} msg/s ({} B a message)",
                fmt(r.smtp_source_mps, 0),
                r.email_bytes.map(|b| b.to_string()).unwrap_or("-".into())
            ),
            String::new(),
            "-",
        ),
        (
            "7 SMTP provider, bare",
            format!(
                "{} msg/s ({}; {} us CPU, {} % idle)",
                fmt(r.email_bare_mps, 0),
                fmt(r.email_bare_to_source, 2),
                fmt(r.email_bare_cpu_us, 0),
                fmt(r.email_bare_idle_pct, 0)
            ),
            String::new(),
            "-",
        ),
        (
            "7 Loa email end to end",
            format!(
                "{} msg/s ({} people)",
                fmt(r.email_loa_mps, 0),
                r.real_people
            ),
            String::new(),
            "-",
        ),
        (
            "7 ratio to smtp-source",
            fmt(r.email_loa_to_source, 2),
            ">= 0.70".into(),
            ok(r.email_loa_to_source.map(|x| x >= 0.7)),
        ),
        (
            "8 Kannel: wrk -c 8",
            format!(
                "{} req/s, bare client {} req/s",
                fmt(r.kannel_wrk_rps, 0),
                fmt(r.kannel_bare_rps, 0)
            ),
            String::new(),
            "-",
        ),
        (
            "8 Loa SMS at concurrency 8",
            format!(
                "{} msg/s ({} people)",
                fmt(r.kannel_loa_mps, 0),
                r.real_people
            ),
            String::new(),
            "-",
        ),
        (
            "8 CPU a message, bare / Loa",
            format!(
                "{} / {} us own, Kannel {} / {}",
                fmt(r.kannel_bare_cpu_us, 0),
                fmt(r.kannel_loa_cpu_us, 0),
                fmt(r.kannel_bare_kannel_cpu_us, 0),
                fmt(r.kannel_loa_kannel_cpu_us, 0)
            ),
            String::new(),
            "-",
        ),
        (
            "8 machine idle, bare / Loa",
            format!(
                "{} / {} %",
                fmt(r.kannel_bare_idle_pct, 0),
                fmt(r.kannel_loa_idle_pct, 0)
            ),
            String::new(),
            "-",
        ),
        (
            "8 ratio to wrk / to bare",
            format!(
                "{} / {}",
                fmt(r.kannel_loa_to_wrk, 2),
                fmt(r.kannel_loa_to_bare, 2)
            ),
            String::new(),
            "-",
        ),
        (
            "9 import (dry / real / again)",
            format!(
                "{} / {} / {} s ({} rows, {} students, {} MiB)",
                fmt(r.import_dry_s, 2),
                fmt(r.import_first_s, 2),
                fmt(r.import_again_s, 2),
                r.import_rows,
                r.import_students,
                fmt(r.import_file_mib, 1)
            ),
            "<= 5 s".into(),
            ok(r.import_first_s.map(|s| s <= 5.0)),
        ),
        (
            "9 import peak RSS",
            format!(
                "{} / {} / {} MiB (the CLI's own process)",
                fmt(r.import_dry_peak_mib, 0),
                fmt(r.import_first_peak_mib, 0),
                fmt(r.import_again_peak_mib, 0),
            ),
            String::new(),
            "-",
        ),
    ]);
    let mut s = format!(
        "loa bench on {} cores, dispatch concurrency {}\n",
        r.cores, r.concurrency
    );
    s.push_str(&format!(
        "{:<26} {:<44} {:<16} {}\n",
        "part", "measured", "target", ""
    ));
    for (a, b, c, d) in rows {
        s.push_str(&format!("{a:<26} {b:<44} {c:<16} {d}\n"));
    }
    s
}

pub async fn run(opts: BenchOptions) -> anyhow::Result<Report> {
    std::fs::create_dir_all(&opts.dir)?;
    let double = Double::spawn()?;
    let concurrency = Config::embedded().dispatch.concurrency;
    let mut r = Report {
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        concurrency,
        people: opts.people,
        fanout_people: opts.fanout_people,
        rate_quota: 200,
        // A burst of exactly the rate's share (20 per 100 ms at 200/s) leaves no room for any jitter: a
        // late timer either loses rate or overfills a window. 25 allows a 25 % spike over smooth pacing.
        rate_burst: 25,
        preview_people: opts.preview_people,
        real_people: opts.real_people,
        ..Default::default()
    };
    let want = |p: u8| opts.parts.is_empty() || opts.parts.contains(&p);
    if want(1) {
        eprintln!("bench: 1 ceiling, {} requests", opts.people);
        let c = ceiling(&double, opts.people, concurrency).await?;
        (r.ceiling_rps, r.ceiling_cpu_us) = (Some(c.rate), Some(c.own_us));
        r.ceiling_double_cpu_us = c.double_us;
    }
    if want(2) {
        eprintln!("bench: 2 end to end, {} people", opts.people);
        let c = end_to_end(&opts, &double).await?;
        (r.loa_mps, r.loa_cpu_us) = (Some(c.rate), Some(c.own_us));
        r.loa_double_cpu_us = c.double_us;
        r.loa_to_ceiling = r.loa_mps.zip(r.ceiling_rps).map(|(l, c)| l / c);
        let per = |own: Option<f64>, theirs: Option<f64>| Some(own? + theirs?);
        r.cpu_ratio = per(r.ceiling_cpu_us, r.ceiling_double_cpu_us)
            .zip(per(r.loa_cpu_us, r.loa_double_cpu_us))
            .map(|(bare, loa)| bare / loa);
    }
    if want(3) {
        eprintln!(
            "bench: 3 fan-out and full run, {} people",
            opts.fanout_people
        );
        fanout(&opts, &double, &mut r).await?;
    }
    if want(4) {
        eprintln!(
            "bench: 4 rate limit, {} s at {}/s",
            opts.rate_seconds, r.rate_quota
        );
        rate_limit(&opts, &double, &mut r).await?;
    }
    if want(5) {
        eprintln!("bench: 5 urgent latency, {} campaigns", opts.urgent);
        urgent(&opts, &double, &mut r).await?;
    }
    if want(6) {
        eprintln!("bench: 6 preview, {} people", opts.preview_people);
        preview(&opts, &double, &mut r).await?;
    }
    if want(7) {
        eprintln!(
            "bench: 7 email into smtp-sink, {} messages over {} connections",
            opts.real_people,
            real::EMAIL_POOL
        );
        real::email(&opts, &mut r).await?;
    }
    if want(8) {
        eprintln!(
            "bench: 8 SMS through Kannel at concurrency {}, {} messages",
            real::SMS_CONCURRENCY,
            opts.real_people
        );
        real::sms_kannel(&opts, &double, &mut r).await?;
    }
    if want(9) {
        eprintln!("bench: 9 roster import, {} rows", opts.import_rows);
        import::import(&opts, &mut r).await?;
    }
    if want(10) {
        eprintln!(
            "bench: 10 two instances on one database, {} people",
            opts.people
        );
        r.two_instances_mps = Some(two_instances(&opts, &double).await?);
        r.two_to_one = r
            .two_instances_mps
            .zip(r.loa_mps)
            .map(|(two, one)| two / one);
    }
    if let Some(path) = &opts.json {
        std::fs::write(path, serde_json::to_string_pretty(&r)?)?;
    }
    Ok(r)
}
