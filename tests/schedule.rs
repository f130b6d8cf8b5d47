//! Recurring campaigns on an injected clock (no sleeping for slots): weekly slots across a month,
//! each slot once with two schedulers on one database and after a restart, missed slots within and
//! beyond the grace period, holidays that skip without advancing a series, the runs listing, and
//! quiet hours holding phone channels while email and urgent campaigns go.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::DateTime;
use common::*;
use loa::scheduler::Scheduler;
use loa::store::Store;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const HOUR: i64 = 3_600_000;
const WEEK: i64 = 7 * 24 * HOUR;

fn utc(s: &str) -> i64 {
    DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
}

/// Monday 2027-03-01 07:00 in Vietnam: the first slot. Far from the real clock, so the daemon's own
/// scheduler (on wall time) never reaches these slots; only the injected ticks do.
fn first_monday() -> i64 {
    utc("2027-03-01T00:00:00Z")
}

/// A school with three staff reachable by SMS.
async fn school(app: &TestApp) -> Tree {
    let t = tree(app).await;
    for i in 0..3 {
        app.contact(json!({"org_id": t.school, "role": "staff", "full_name": format!("Cô {i}"), "phone": format!("09120001{i:02}")}))
            .await;
    }
    t
}

async fn sms_template(app: &TestApp, org: i64, text: &str) -> i64 {
    app.create(
        "/api/v1/templates",
        json!({"org_id": org, "name": text, "sms_text": text}),
    )
    .await
}

/// An approved recurring campaign whose slots count from `start` (the injected clock).
async fn recurring(app: &TestApp, t: &Tree, body: Value, start: i64) -> i64 {
    let mut b = json!({"org_id": t.school, "name": "Mẹo an toàn hằng tuần",
        "audience": {"org_id": t.school, "roles": ["staff"]}, "channels": ["sms"]});
    for (k, v) in body.as_object().unwrap() {
        b[k] = v.clone();
    }
    let c = app.create("/api/v1/campaigns", b).await;
    app.approve(c).await;
    assert!(app.state.store.start_recurring(c, start).await.unwrap());
    c
}

fn scheduler(app: &TestApp, store: Arc<dyn Store>) -> Scheduler {
    Scheduler::new(
        store,
        6 * HOUR,
        Arc::new(tokio::sync::Notify::new()),
        app.state.dispatch_wake.clone(),
    )
}

async fn runs(app: &TestApp, c: i64) -> Value {
    let (s, v) = app.get(&format!("/api/v1/campaigns/{c}/runs")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

fn run_summary(v: &Value) -> Vec<(i64, String, Option<String>)> {
    v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["slot_at"].as_i64().unwrap(),
                r["state"].as_str().unwrap().to_string(),
                r["reason"].as_str().map(String::from),
            )
        })
        .collect()
}

#[tokio::test]
async fn weekly_slots_across_a_month_each_once_with_two_schedulers() {
    let app = spawn_app(|_, _| {}).await;
    let t = school(&app).await;
    let tpl = sms_template(&app, t.school, "Meo an toan tren mang").await;
    let start = utc("2027-02-27T05:00:00Z");
    let c = recurring(
        &app,
        &t,
        json!({"template_id": tpl, "schedule": {"every": "weekly on Monday at 07:00", "start": "2027-03-01", "end": "2027-03-31"}}),
        start,
    )
    .await;
    // Two daemons on one database: a second store on the same file, with its own scheduler.
    let other: Arc<dyn Store> = loa::store::open(&app.cfg.database.url).await.unwrap();
    let (a, b) = (
        scheduler(&app, app.state.store.clone()),
        scheduler(&app, other),
    );
    let mut now = start;
    while now < utc("2027-04-06T00:00:00Z") {
        let (ra, rb) = tokio::join!(a.tick_at(now), b.tick_at(now + 1));
        ra.unwrap();
        rb.unwrap();
        now += 6 * HOUR;
    }
    let v = runs(&app, c).await;
    let slots: Vec<i64> = run_summary(&v).iter().map(|r| r.0).collect();
    let mondays: Vec<i64> = (0..5).map(|i| first_monday() + i * WEEK).collect();
    assert_eq!(
        slots, mondays,
        "each Monday 07:00 in Vietnam (00:00 UTC), once"
    );
    assert_eq!(v["schedule_ended"], true, "the end date has passed: {v}");
    app.wait_done(c).await;
    assert_eq!(
        app.sink_lines("sms").len(),
        5 * 3,
        "five slots, three staff"
    );
    let v = runs(&app, c).await;
    assert!(
        run_summary(&v).iter().all(|r| r.1 == "done"),
        "{}",
        v["runs"]
    );
    assert_eq!(
        v["runs"][0]["deliveries"]["delivered"], 3,
        "{}",
        v["runs"][0]
    );
    assert_eq!(v["next_slots"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn missed_slots_run_within_the_grace_period_and_are_skipped_beyond_it() {
    let app = spawn_app(|_, _| {}).await;
    let t = school(&app).await;
    let tpl = sms_template(&app, t.school, "Nhac nho hang tuan").await;
    let start = utc("2027-02-27T05:00:00Z");
    let c = recurring(
        &app,
        &t,
        json!({"template_id": tpl, "schedule": {"cron": "0 7 * * MON"}}),
        start,
    )
    .await;
    let s = scheduler(&app, app.state.store.clone());
    s.tick_at(start).await.unwrap();
    // The daemon was down over the first slot and comes back 5 hours later: it runs once.
    s.tick_at(first_monday() + 5 * HOUR).await.unwrap();
    // Down again for two weeks: the second slot is 7 days old (skipped), the third 1 hour (runs).
    s.tick_at(first_monday() + 2 * WEEK + HOUR).await.unwrap();
    // A restart inside that slot: a new scheduler on the same database records nothing twice.
    let restarted = scheduler(&app, app.state.store.clone());
    restarted
        .tick_at(first_monday() + 2 * WEEK + 2 * HOUR)
        .await
        .unwrap();
    let v = runs(&app, c).await;
    let got: Vec<(i64, String, Option<String>)> = run_summary(&v)
        .into_iter()
        .map(|(at, state, reason)| {
            let state = if state == "skipped" {
                state
            } else {
                "sent".into()
            };
            (at, state, reason)
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (first_monday(), "sent".to_string(), None),
            (
                first_monday() + WEEK,
                "skipped".to_string(),
                Some("missed".to_string())
            ),
            (first_monday() + 2 * WEEK, "sent".to_string(), None),
        ]
    );
    // The next five slots are listed, a week apart.
    let next: Vec<i64> = v["next_slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["at"].as_i64().unwrap())
        .collect();
    assert_eq!(next.len(), 5, "{v}");
    assert!(next.windows(2).all(|w| w[1] - w[0] == WEEK), "{next:?}");
    assert!(
        v["next_slots"][0]["local"]
            .as_str()
            .unwrap()
            .starts_with("Thứ Hai"),
        "{v}"
    );
    wait_for(Duration::from_secs(10), || async {
        (app.sink_lines("sms").len() == 2 * 3).then_some(())
    })
    .await
    .expect("two runs sent");
    app.stop().await;
}

#[tokio::test]
async fn holidays_skip_without_advancing_the_series_and_its_end_ends_the_campaign() {
    let app = spawn_app(|_, _| {}).await;
    let t = school(&app).await;
    // The Phòng's calendar applies to its schools.
    let (s, v) = app
        .call(
            Method::PUT,
            &format!("/api/v1/orgs/{}/calendar", t.district),
            Some(json!({"calendar": {
                "terms": [{"start": "2027-01-04", "end": "2027-05-28", "name": "Học kỳ 2"}],
                "holidays": [{"start": "2027-03-08", "end": "2027-03-12", "name": "Kiểm tra giữa kỳ"}]}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = app
        .get(&format!("/api/v1/orgs/{}/calendar", t.school))
        .await;
    assert_eq!(v["inherited_from"].as_i64(), Some(t.district), "{v}");
    let mut series = Vec::new();
    for text in ["Tuan 1: mat khau", "Tuan 2: lua dao", "Tuan 3: bat nat"] {
        series.push(sms_template(&app, t.school, text).await);
    }
    let start = utc("2027-02-27T05:00:00Z");
    let c = recurring(
        &app,
        &t,
        json!({"series": series, "schedule": {"every": "thứ Hai hằng tuần lúc 07:00", "only_during_term": true}}),
        start,
    )
    .await;
    let v = runs(&app, c).await;
    assert_eq!(
        v["next_slots"][1]["skip"], "holiday: Kiểm tra giữa kỳ",
        "upcoming slots show the holiday: {v}"
    );
    let s = scheduler(&app, app.state.store.clone());
    for week in 0..6 {
        s.tick_at(first_monday() + week * WEEK + HOUR)
            .await
            .unwrap();
    }
    let v = runs(&app, c).await;
    let got: Vec<(i64, Option<i64>, Option<String>)> = v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["slot_at"].as_i64().unwrap(),
                r["template_id"].as_i64(),
                r["reason"].as_str().map(String::from),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (first_monday(), Some(series[0]), None),
            (
                first_monday() + WEEK,
                None,
                Some("holiday: Kiểm tra giữa kỳ".into())
            ),
            (first_monday() + 2 * WEEK, Some(series[1]), None),
            (first_monday() + 3 * WEEK, Some(series[2]), None),
        ],
        "the holiday week is skipped and the series resumes with tip 2; after tip 3 nothing"
    );
    assert_eq!(v["schedule_ended"], true);
    let done = app.wait_done(c).await;
    assert_eq!(done["state"], "done");
    let texts: Vec<String> = app
        .sink_lines("sms")
        .iter()
        .map(|l| l["text"].as_str().unwrap_or_default().to_string())
        .collect();
    for (i, tip) in ["Tuan 1", "Tuan 2", "Tuan 3"].iter().enumerate() {
        assert_eq!(
            texts.iter().filter(|t| t.contains(tip)).count(),
            3,
            "tip {i} to each of the three staff: {texts:?}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn schedules_are_checked_and_urgency_is_for_approvers() {
    let app = spawn_app_with(|_, _| {}, false).await;
    let t = school(&app).await;
    let tpl = sms_template(&app, t.school, "X").await;
    let base = json!({"org_id": t.school, "name": "C", "template_id": tpl,
        "audience": {"org_id": t.school, "roles": ["staff"]}, "channels": ["sms"]});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    for (body, field) in [
        (
            with("schedule", json!({"every": "weekly on Funday at 07:00"})),
            "schedule",
        ),
        (with("schedule", json!({"cron": "0 7 * *"})), "schedule"),
        (
            with(
                "schedule",
                json!({"cron": "0 7 * * MON", "start": "2027-05-01", "end": "2027-01-01"}),
            ),
            "schedule",
        ),
        (with("series", json!([tpl])), "series"),
    ] {
        let (s, v) = app.post("/api/v1/campaigns", body).await;
        assert_eq!(
            (s, v["error"]["details"][0]["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{v}"
        );
    }
    // The operator here is an author, not an approver: it may not mark a campaign urgent.
    let (s, v) = app
        .post("/api/v1/campaigns", with("urgent", json!(true)))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    // A calendar with a backwards range is refused with its field.
    let (s, v) = app
        .call(
            Method::PUT,
            &format!("/api/v1/orgs/{}/calendar", t.school),
            Some(json!({"calendar": {"holidays": [{"start": "2027-02-10", "end": "2027-02-01", "name": "Tết"}]}})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["details"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("calendar"))
    );
    app.stop().await;
}

/// "HH:MM" in Vietnam, `offset` ms from now.
fn vn_hhmm(offset: i64) -> String {
    DateTime::from_timestamp_millis(loa::clock::now_ms() + offset)
        .unwrap()
        .with_timezone(&loa::domain::schedule::vietnam())
        .format("%H:%M")
        .to_string()
}

#[tokio::test]
async fn quiet_hours_hold_phone_channels_but_not_email_or_urgent_campaigns() {
    let app = spawn_app(|_, _| {}).await;
    let t = school(&app).await;
    app.contact(json!({"org_id": t.school, "role": "staff", "full_name": "Thầy Email", "email": "thay@example.vn"}))
        .await;
    // Quiet hours around the present moment at the school.
    let window = format!("{}-{}", vn_hhmm(-HOUR), vn_hhmm(HOUR));
    let (s, v) = app
        .call(
            Method::PUT,
            &format!("/api/v1/orgs/{}/quiet-hours", t.school),
            Some(json!({"quiet_hours": window})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let q: loa::domain::schedule::QuietHours = window.parse().unwrap();
    let release = q.release_at(loa::clock::now_ms()).unwrap();
    let tpl = app
        .create(
            "/api/v1/templates",
            json!({"org_id": t.school, "name": "T", "sms_text": "Hop phu huynh", "email_subject": "Họp", "email_text": "Họp phụ huynh"}),
        )
        .await;
    let held = campaign(&app, t.school, tpl, &["staff"], &["sms", "email"]).await;
    app.start(held).await;
    // An approver who also writes marks the next one urgent.
    let boss = {
        let id = app
            .create(
                "/api/v1/users",
                json!({"org_id": t.school, "username": "hieutruong", "full_name": "Hiệu trưởng", "roles": ["author", "approver"]}),
            )
            .await;
        let (_, v) = app
            .post(&format!("/api/v1/users/{id}/tokens"), json!({"name": "t"}))
            .await;
        v["token"].as_str().unwrap().to_string()
    };
    let (s, v) = app
        .call_as(
            &boss,
            Method::POST,
            "/api/v1/campaigns",
            Some(json!({"org_id": t.school, "name": "Khẩn: nghỉ học do bão", "template_id": tpl, "urgent": true,
                "audience": {"org_id": t.school, "roles": ["staff"]}, "channels": ["sms"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let urgent = v["id"].as_i64().unwrap();
    app.start(urgent).await;
    app.wait_done(urgent).await;
    // The email of the first campaign went; its SMS wait for the window's end.
    wait_for(Duration::from_secs(10), || async {
        let ds = app.deliveries(held).await;
        ds.iter()
            .any(|d| d["channel"] == "email" && d["state"] == "delivered")
            .then_some(())
    })
    .await
    .expect("email is not held");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        app.sink_lines("sms").len(),
        3,
        "only the urgent campaign's SMS went"
    );
    let pool = app.raw_db().await;
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT state, next_attempt_at FROM deliveries WHERE campaign_id = $1 AND channel = 'sms'",
    )
    .bind(held)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 3);
    assert!(
        rows.iter().all(|(s, at)| s == "queued" && *at == release),
        "held until {release}: {rows:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn pause_resume_and_cancel_lose_nothing_and_send_nothing_twice() {
    // SMS at 20 a second, so the run is still going when staff pause it.
    let app = spawn_app(|cfg, _| {
        let p = cfg.providers.get_mut("sms-sink").unwrap();
        p.rate_per_second = Some(20);
        p.burst = Some(1);
    })
    .await;
    let t = tree(&app).await;
    parents_with_children(&app, &t, 40).await;
    let tpl = template(&app, t.school).await;
    let c = campaign(&app, t.school, tpl, &["parent"], &["sms"]).await;
    app.start(c).await;
    wait_for(Duration::from_secs(10), || async {
        (app.sink_lines("sms").len() >= 5).then_some(())
    })
    .await
    .expect("sending started");
    let (s, v) = app
        .post(&format!("/api/v1/campaigns/{c}/pause"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Within a second no new claim: what was already claimed may finish, then nothing moves.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let at_pause = app.sink_lines("sms").len();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(app.sink_lines("sms").len(), at_pause, "sent while paused");
    assert!(at_pause < 40, "the pause came too late to test anything");
    let (s, _) = app
        .post(&format!("/api/v1/campaigns/{c}/pause"), json!({}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "pausing twice");
    let (s, v) = app
        .post(&format!("/api/v1/campaigns/{c}/resume"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    app.wait_done(c).await;
    let sent = app.sink_lines("sms");
    let mut to: Vec<String> = sent.iter().map(|l| l["to"].to_string()).collect();
    to.sort();
    to.dedup();
    assert_eq!((sent.len(), to.len()), (40, 40), "each parent exactly once");

    // Cancelling one run: its unsent deliveries are cancelled, nothing else is touched.
    let c2 = campaign(&app, t.school, tpl, &["parent"], &["sms"]).await;
    app.start(c2).await;
    let run = app.first_run(c2).await;
    let (s, v) = app
        .post(
            &format!("/api/v1/campaigns/{c2}/runs/{run}/pause"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = app
        .post(
            &format!("/api/v1/campaigns/{c2}/runs/{run}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let sms_before = app.sink_lines("sms").len();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let sms_at_cancel = app.sink_lines("sms").len();
    assert!(
        sms_at_cancel < sms_before + 40,
        "the second campaign finished before the cancel"
    );
    // Deliveries the dispatcher held in memory for the rate limiter go back and end cancelled too.
    let p = wait_for(Duration::from_secs(10), || async {
        let (_, p) = app.get(&format!("/api/v1/campaigns/{c2}/progress")).await;
        (p["state"] == "done" && settled(&p)).then_some(p)
    })
    .await
    .expect("every delivery settled");
    let by_state = &p["progress"]["by_state"];
    let cancelled = by_state["cancelled"].as_i64().unwrap_or(0);
    let delivered = by_state["delivered"].as_i64().unwrap_or(0);
    assert_eq!(
        cancelled + delivered,
        p["progress"]["total"].as_i64().unwrap(),
        "{p}"
    );
    assert!(cancelled > 0, "{p}");
    assert_eq!(
        app.sink_lines("sms").len(),
        sms_at_cancel,
        "nothing of the run left once cancelled"
    );

    // A campaign paused before it starts starts paused: nothing goes until it is resumed.
    let c3 = campaign(&app, t.school, tpl, &["parent"], &["sms"]).await;
    app.approve(c3).await;
    let (s, v) = app
        .post(&format!("/api/v1/campaigns/{c3}/pause"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = app
        .post(&format!("/api/v1/campaigns/{c3}/start"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        app.sink_lines("sms").len(),
        sms_at_cancel,
        "sent while paused"
    );
    let (s, v) = app
        .post(&format!("/api/v1/campaigns/{c3}/resume"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    app.wait_done(c3).await;
    assert_eq!(app.sink_lines("sms").len(), sms_at_cancel + 40);
    app.stop().await;
}
