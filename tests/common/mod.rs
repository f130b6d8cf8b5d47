//! Test harness: the real app on port 0 against a temporary SQLite file, HTTP helpers, fixtures.
#![allow(dead_code)]

pub mod importing;
pub mod kannel_double;
pub mod messenger_double;
pub mod peers;
pub mod serve;
pub mod skip;
pub mod sms_doubles;
pub mod xlsx;
pub mod zalo_double;

pub use skip::record_skip;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use loa::api::AppState;
use loa::app::{App, Running};
use loa::config::Config;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

pub struct TestApp {
    pub base: String,
    pub state: AppState,
    /// Sends the operator's token (an installation admin and author) with every request.
    pub http: reqwest::Client,
    /// A second operator who approves what the first one writes (nobody approves their own).
    pub approver_token: String,
    pub app_dispatcher: std::sync::Arc<loa::dispatch::Dispatcher>,
    pub cfg: Config,
    shutdown: CancellationToken,
    running: Option<Running>,
    pub dir: TempDir,
}

/// The PostgreSQL server of the PostgreSQL pass: set when `LOA_TEST_STORE=postgres` and
/// `LOA_TEST_POSTGRES_URL` names a server (`scripts/test` runs the suite a second time so).
pub fn postgres_pass() -> Option<String> {
    let on = std::env::var("LOA_TEST_STORE").is_ok_and(|s| s == "postgres");
    let url = std::env::var("LOA_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty());
    match (on, url) {
        (true, Some(url)) => Some(url),
        (true, None) => panic!("LOA_TEST_STORE=postgres needs LOA_TEST_POSTGRES_URL"),
        (false, _) => None,
    }
}

/// True in the PostgreSQL pass: tests of SQLite's own mechanics (its file, its PRAGMAs) return.
pub fn on_postgres() -> bool {
    postgres_pass().is_some()
}

/// A new, empty schema on the server at `base` for one test, as a URL whose connections use it.
pub fn new_postgres_schema(base: &str) -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let schema = format!(
        "loa_t_{}_{}_{:x}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        rand::random::<u32>()
    );
    let server = base.to_string();
    let create = schema.clone();
    // Its own thread and runtime: callers may be sync, or inside a single-threaded test runtime.
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let pool = sqlx::PgPool::connect(&server)
                    .await
                    .expect("PostgreSQL answers");
                sqlx::query(&format!("CREATE SCHEMA {create}"))
                    .execute(&pool)
                    .await
                    .expect("schema created");
                pool.close().await;
            })
    })
    .join()
    .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options[search_path]={schema}")
}

/// The database a test app in `dir` uses: a SQLite file there, or a schema of its own on PostgreSQL
/// in the PostgreSQL pass.
pub fn test_database_url(dir: &Path) -> String {
    match postgres_pass() {
        Some(base) => new_postgres_schema(&base),
        None => format!("sqlite://{}", dir.join("loa.db").display()),
    }
}

/// A pool on a test's database for the few checks that read or write rows directly, on either
/// dialect (`$1` placeholders work on both).
pub async fn raw_db(url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(url).await.unwrap()
}

pub fn test_config(dir: &Path) -> Config {
    let mut cfg = Config::embedded();
    cfg.database.url = test_database_url(dir);
    cfg.server.listen = "127.0.0.1:0".parse().unwrap();
    cfg.dispatch.poll_interval_ms = 50;
    cfg.dispatch.retry_base_ms = 40;
    cfg.dispatch.retry_max_ms = 400;
    // Longer than the doubles' provider timeouts (5 s), as the config check requires. Leases only
    // lapse for a process that died; the tests of that set their own.
    cfg.dispatch.lease_seconds = 6;
    cfg.dispatch.shutdown_grace_seconds = 2;
    // Tests run at any hour; the quiet-hours tests set their own window.
    cfg.schedule.quiet_hours = String::new();
    cfg.use_sinks(&dir.join("outbox"), 0);
    cfg
}

/// Sets a configured provider's answer timeout (the lease must stay longer than it).
pub fn set_timeout(cfg: &mut Config, provider: &str, seconds: u64) {
    use loa::config::ProviderKind::*;
    if let Some(p) = cfg.providers.get_mut(provider) {
        match &mut p.kind {
            Smtp {
                timeout_seconds, ..
            }
            | Kannel {
                timeout_seconds, ..
            }
            | Facebook {
                timeout_seconds, ..
            }
            | Esms {
                timeout_seconds, ..
            }
            | Speedsms {
                timeout_seconds, ..
            }
            | HttpSms {
                timeout_seconds, ..
            } => *timeout_seconds = seconds,
            ZaloZns { app, .. } | ZaloOa { app, .. } => app.timeout_seconds = seconds,
            Sink { .. } => {}
        }
    }
}

/// Starts Loa with sinks on every channel, after `tweak` adjusts the config.
pub async fn spawn_app(tweak: impl FnOnce(&mut Config, &Path)) -> TestApp {
    spawn_app_with(tweak, true).await
}

pub async fn spawn_app_with(
    tweak: impl FnOnce(&mut Config, &Path),
    with_dispatcher: bool,
) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    tweak(&mut cfg, dir.path());
    let app = App::build(&cfg).await.expect("app builds");
    let base = app.base_url();
    let app_dispatcher = app.dispatcher.clone();
    let shutdown = CancellationToken::new();
    let running = app.spawn_with(shutdown.clone(), with_dispatcher);
    let store = running.state.store.clone();
    let ops = loa::approval::tool_user(
        store.as_ref(),
        None,
        "ops",
        "Vận hành",
        &[
            loa::domain::access::UserRole::Admin,
            loa::domain::access::UserRole::Author,
        ],
    )
    .await
    .unwrap();
    let checker = loa::approval::tool_user(
        store.as_ref(),
        None,
        "ops-approver",
        "Phê duyệt",
        &[loa::domain::access::UserRole::Approver],
    )
    .await
    .unwrap();
    let (_, token) = loa::api::users::create_token(store.as_ref(), ops.user_id, "tests")
        .await
        .unwrap();
    let (_, approver_token) =
        loa::api::users::create_token(store.as_ref(), checker.user_id, "tests")
            .await
            .unwrap();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    TestApp {
        base,
        state: running.state.clone(),
        http: reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap(),
        approver_token,
        app_dispatcher,
        cfg,
        shutdown,
        running: Some(running),
        dir,
    }
}

impl TestApp {
    /// A request as the operator (the default client's token).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        Self::finish(
            self.http.request(method, format!("{}{path}", self.base)),
            body,
        )
        .await
    }

    async fn finish(mut req: reqwest::RequestBuilder, body: Option<Value>) -> (StatusCode, Value) {
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A request with another user's token (or none: `token` empty).
    pub async fn call_as(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        // A client without the operator's default header.
        let mut req = reqwest::Client::new().request(method, format!("{}{path}", self.base));
        if !token.is_empty() {
            req = req.bearer_auth(token);
        }
        Self::finish(req, body).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::PATCH, path, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::DELETE, path, None).await
    }

    /// POSTs and expects 201, returning the created object's id.
    pub async fn create(&self, path: &str, body: Value) -> i64 {
        let (s, v) = self.post(path, body).await;
        assert_eq!(s, StatusCode::CREATED, "POST {path}: {v}");
        v["id"].as_i64().unwrap()
    }

    pub async fn org(&self, parent: Option<i64>, kind: &str, code: &str, name: &str) -> i64 {
        self.create(
            "/api/v1/orgs",
            json!({"parent_id": parent, "kind": kind, "code": code, "name": name}),
        )
        .await
    }

    pub async fn contact(&self, body: Value) -> i64 {
        self.create("/api/v1/contacts", body).await
    }

    pub async fn link(&self, parent: i64, student: i64) {
        let (s, v) = self
            .post(
                "/api/v1/guardian-links",
                json!({"parent_id": parent, "student_id": student}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }

    /// Submits the campaign (as the operator) and approves it (as the second operator).
    pub async fn approve(&self, campaign: i64) {
        let (s, v) = self
            .post(&format!("/api/v1/campaigns/{campaign}/submit"), json!({}))
            .await;
        assert_eq!(s, StatusCode::OK, "submit: {v}");
        let (s, v) = self
            .call_as(
                &self.approver_token,
                reqwest::Method::POST,
                &format!("/api/v1/campaigns/{campaign}/approve"),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "approve: {v}");
    }

    /// Approves and starts the campaign.
    pub async fn start(&self, campaign: i64) {
        self.approve(campaign).await;
        let (s, v) = self
            .post(&format!("/api/v1/campaigns/{campaign}/start"), json!({}))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }

    /// Waits until the campaign is done and every delivery settled; returns its progress.
    /// Waits until the campaign's run has queued its `n` deliveries (nothing sent yet).
    pub async fn wait_fanned_out(&self, campaign: i64, n: usize) {
        wait_for(Duration::from_secs(20), || async {
            let (_, p) = self
                .get(&format!("/api/v1/campaigns/{campaign}/progress"))
                .await;
            (p["progress"]["by_state"]["queued"] == n).then_some(())
        })
        .await
        .expect("fanned out");
    }

    pub async fn wait_done(&self, campaign: i64) -> Value {
        wait_for(Duration::from_secs(30), || async {
            let (_, p) = self
                .get(&format!("/api/v1/campaigns/{campaign}/progress"))
                .await;
            (p["state"] == "done").then_some(p)
        })
        .await
        .unwrap_or_else(|| panic!("campaign {campaign} not done in time"))
    }

    /// The id of the campaign's first run.
    pub async fn first_run(&self, campaign: i64) -> i64 {
        let (s, r) = self
            .get(&format!("/api/v1/campaigns/{campaign}/runs"))
            .await;
        assert_eq!(s, StatusCode::OK, "{r}");
        r["runs"][0]["id"].as_i64().unwrap()
    }

    pub async fn deliveries(&self, campaign: i64) -> Vec<Value> {
        let (s, v) = self
            .get(&format!(
                "/api/v1/campaigns/{campaign}/deliveries?limit=1000"
            ))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["deliveries"].as_array().unwrap().clone()
    }

    /// Runs the `loa` binary against this app's database. Awaited, not blocked on: a test runtime has
    /// one thread, and blocking it could freeze the app between a transaction's BEGIN and COMMIT, so
    /// the CLI would wait out SQLite's busy timeout for a write lock nobody releases.
    pub async fn loa_cli(&self, args: &[&str]) -> std::process::Output {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_loa"))
            .args(args)
            .current_dir(self.dir.path())
            .env("LOA__DATABASE__URL", &self.cfg.database.url)
            .env("LOA_LOG", "error")
            .output()
            .await
            .unwrap()
    }

    /// A pool on this app's database, for checks that read or write rows directly.
    pub async fn raw_db(&self) -> sqlx::AnyPool {
        raw_db(&self.cfg.database.url).await
    }

    pub fn outbox(&self) -> PathBuf {
        self.dir.path().join("outbox")
    }

    /// Lines the sink of a channel wrote.
    pub fn sink_lines(&self, channel: &str) -> Vec<Value> {
        let p = self.outbox().join(format!("{channel}.jsonl"));
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(r) = self.running.take() {
            r.join().await.unwrap();
        }
    }
}

/// A configuration secret in tests.
pub fn secret(s: &str) -> loa::config::Secret {
    serde_json::from_value(json!(s)).unwrap()
}

/// Routes `channel` to a provider `name` of `kind`, with no rate limit.
pub fn route(
    cfg: &mut Config,
    channel: providers::Channel,
    name: &str,
    kind: loa::config::ProviderKind,
) {
    cfg.providers.insert(
        name.into(),
        loa::config::ProviderConfig {
            kind,
            rate_per_second: None,
            burst: None,
            // As brandname SMS contracts usually require.
            unaccent: channel == providers::Channel::Sms,
            max_segments: None,
        },
    );
    cfg.channels.insert(channel, name.into());
}

pub async fn wait_for<T, F, Fut>(timeout: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(v) = f().await {
            return Some(v);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    None
}

/// Sở -> Phòng -> school -> two classes.
pub struct Tree {
    pub province: i64,
    pub district: i64,
    pub school: i64,
    pub class_a: i64,
    pub class_b: i64,
}

pub async fn tree(app: &TestApp) -> Tree {
    let province = app.org(None, "province", "SGD", "Sở GD&ĐT Hòa Bình").await;
    let district = app
        .org(Some(province), "district", "PGD", "Phòng GD&ĐT Lạc Sơn")
        .await;
    let school = app
        .org(Some(district), "school", "TH1", "Trường Tiểu học Mỹ Phú")
        .await;
    let class_a = app.org(Some(school), "class", "TH1-1A", "1A").await;
    let class_b = app.org(Some(school), "class", "TH1-4B", "4B").await;
    Tree {
        province,
        district,
        school,
        class_a,
        class_b,
    }
}

/// A template with a body for every channel naming the children.
pub async fn template(app: &TestApp, org: i64) -> i64 {
    app.create(
        "/api/v1/templates",
        json!({
            "org_id": org,
            "name": "Mẹo tuần 1",
            "email_subject": "Mẹo an toàn trên mạng - {{ school_name }}",
            "email_text": "Kính gửi phụ huynh em {{ student_names }} ({{ class_name }}). Huỷ: {{ unsubscribe_url }}",
            "sms_text": "PH em {{ student_names }}: khong chia se mat khau cua con.",
            "zalo_text": "Kính gửi phụ huynh em {{ student_names }}: không chia sẻ mật khẩu của con."
        }),
    )
    .await
}

pub async fn campaign(
    app: &TestApp,
    org: i64,
    template: i64,
    roles: &[&str],
    channels: &[&str],
) -> i64 {
    app.create(
        "/api/v1/campaigns",
        json!({"org_id": org, "name": "Tuần 1", "template_id": template,
               "audience": {"org_id": org, "roles": roles}, "channels": channels}),
    )
    .await
}

/// The common scenario: a school with `n` parents (one child each), a campaign to its parents on
/// `channels`, started and run to the end. Returns the campaign id.
pub async fn run_parents_campaign(app: &TestApp, n: usize, channels: &[&str]) -> i64 {
    let t = tree(app).await;
    parents_with_children(app, &t, n).await;
    let tpl = template(app, t.school).await;
    let c = campaign(app, t.school, tpl, &["parent"], channels).await;
    app.start(c).await;
    app.wait_done(c).await;
    c
}

/// `n` parents with one child each in class A, with phones 0912000000 + i.
pub async fn parents_with_children(app: &TestApp, t: &Tree, n: usize) -> Vec<i64> {
    let mut parents = Vec::new();
    for i in 0..n {
        let s = app.contact(json!({"org_id": t.class_a, "role": "student", "full_name": format!("Học Sinh {i}"), "student_code": format!("HS{i:04}")})).await;
        let p = app.contact(json!({"org_id": t.school, "role": "parent", "full_name": format!("Phụ Huynh {i}"), "phone": format!("0912{i:06}"), "email": format!("ph{i}@example.vn")})).await;
        app.link(p, s).await;
        parents.push(p);
    }
    parents
}

/// Whether a progress reply (`GET /campaigns/{id}/progress`) has no delivery left queued, sending or
/// retrying.
pub fn settled(p: &Value) -> bool {
    !["queued", "sending", "retrying"]
        .iter()
        .any(|s| p["progress"]["by_state"][s].as_i64().unwrap_or(0) > 0)
}

/// The password of the users `web_user` makes, for the page tests.
pub const WEB_PASSWORD: &str = "mật khẩu thử 2026";

/// A user with the password `WEB_PASSWORD` at `org`, for the page tests; returns their id.
pub async fn web_user(
    app: &TestApp,
    org: Option<i64>,
    username: &str,
    roles: &[loa::domain::access::UserRole],
) -> i64 {
    let p = loa::approval::tool_user(app.state.store.as_ref(), org, username, username, roles)
        .await
        .unwrap();
    let hash = loa::auth::hash_password(WEB_PASSWORD).unwrap();
    app.state
        .store
        .set_password(p.user_id, &hash)
        .await
        .unwrap();
    p.user_id
}
