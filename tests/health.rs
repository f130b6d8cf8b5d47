//! The operator's probes: `/healthz` answers while the process lives; `/readyz` is 200 only when the
//! database answers, its schema is at this build's head and the dispatcher runs, and says which
//! check failed otherwise. `LOA_LOG_FORMAT=json` writes one JSON object per log line.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;
use reqwest::StatusCode;
use serde_json::Value;

async fn readyz(app: &TestApp) -> (StatusCode, Value) {
    let r = reqwest::get(format!("{}/readyz", app.base)).await.unwrap();
    let code = r.status();
    (code, r.json().await.unwrap())
}

#[tokio::test]
async fn ready_when_the_database_is_at_head_and_the_dispatcher_runs() {
    let app = spawn_app(|_, _| {}).await;
    let alive = reqwest::get(format!("{}/healthz", app.base)).await.unwrap();
    assert_eq!(alive.status(), StatusCode::OK);
    assert_eq!(alive.text().await.unwrap(), "ok");
    let (code, body) = readyz(&app).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["ready"], true);
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["dispatcher"], "ok");
    assert_eq!(body["checks"]["writes"], "ok");
    app.stop().await;
}

#[tokio::test]
async fn not_ready_without_a_dispatcher() {
    let app = spawn_app_with(|_, _| {}, false).await;
    let (code, body) = readyz(&app).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["ready"], false);
    assert_eq!(body["checks"]["dispatcher"], "not running");
    assert_eq!(body["checks"]["database"], "ok");
    app.stop().await;
}

#[tokio::test]
async fn not_ready_when_a_newer_loa_migrated_the_database() {
    let app = spawn_app(|_, _| {}).await;
    // What a newer build leaves behind: a migration this build does not know.
    let url = app.cfg.database.url.clone();
    let pool = common::raw_db(&url).await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99999, 'from the future', TRUE, $1, 0)",
    )
    .bind(vec![0u8])
    .execute(&pool)
    .await
    .unwrap();
    let (code, body) = readyz(&app).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let why = body["checks"]["database"].as_str().unwrap();
    assert!(why.starts_with("schema at migration 99999"), "{why}");
    app.stop().await;
}

#[test]
fn json_log_lines_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("loa.toml");
    std::fs::write(
        &cfg,
        format!(
            "[database]\nurl = \"sqlite://{}\"\n[server]\nlisten = \"127.0.0.1:0\"\n",
            dir.path().join("loa.db").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_loa"))
        .arg("--config")
        .arg(&cfg)
        .arg("serve")
        .current_dir(dir.path())
        .env("LOA_LOG_FORMAT", "json")
        .env_remove("LOA_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("loa serve starts");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut serving = None;
    for line in lines.by_ref().take(50) {
        let line = line.unwrap();
        assert!(!line.contains('\u{1b}'), "a colour code in {line:?}");
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        if v["fields"]["message"] == "loa serving" {
            serving = Some(v);
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let v = serving.expect("the serving line, as JSON");
    assert_eq!(v["level"], "INFO");
    assert!(
        v["fields"]["addr"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
}

#[tokio::test]
async fn metrics_count_a_campaign_for_operators_only() {
    let app = spawn_app(|_, _| {}).await;
    run_parents_campaign(&app, 3, &["sms"]).await;
    let url = format!("{}/metrics", app.base);
    // The default client carries the operator admin's token.
    let r = app.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
            .to_string()
    };
    // Other tests of this process may send too: at least this campaign's three.
    let sends = line("loa_sends_total{");
    assert!(
        sends.contains("result=\"ok\"") && sends.contains("channel=\"sms\""),
        "{sends}"
    );
    let n: f64 = sends.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n >= 3.0, "{sends}");
    line("loa_outcomes_total{");
    line("loa_claim_seconds_bucket");
    line("loa_record_seconds_count");
    line("loa_send_seconds_bucket{");
    // Gauges come back down once the campaign is done: nothing in flight, nothing held.
    assert_eq!(line("loa_sends_in_flight "), "loa_sends_in_flight 0");
    assert_eq!(line("loa_deliveries_held "), "loa_deliveries_held 0");
    // Nobody without a token, and no one but an operator's admin.
    let anon = reqwest::get(&url).await.unwrap();
    assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);
    let approver = reqwest::Client::new()
        .get(&url)
        .bearer_auth(&app.approver_token)
        .send()
        .await
        .unwrap();
    assert_eq!(approver.status(), StatusCode::FORBIDDEN);
    app.stop().await;
}
