//! The Vietnamese channels end to end against their doubles: a `zalo_zns, sms, email` campaign to a
//! mixed audience with receipts and the per-channel report; a template Zalo refuses pausing the
//! channel (then resume, or skip to SMS); Zalo OA with a token refreshed on -216; Messenger with tags,
//! errors and watermarks; eSMS, SpeedSMS and a generic gateway with their callbacks; webhook signatures.

mod common;

use common::messenger_double::{MessengerDouble, VERIFY_TOKEN, fb_signature, messenger_provider};
use common::sms_doubles::{
    SPEEDSMS_HOOK, SmsDouble, esms_provider, gateway_provider, speedsms_provider,
};
use common::zalo_double::{
    APP_ID, TEMPLATE_ID, ZaloDouble, oa_provider, zalo_signature, zns_provider,
};
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

/// A template with bodies for SMS, email, Zalo OA, Messenger and a mapped ZNS template.
async fn all_channels_template(app: &TestApp, org: i64) -> i64 {
    app.create(
        "/api/v1/templates",
        json!({
            "org_id": org,
            "name": "Họp phụ huynh",
            "email_subject": "Họp phụ huynh - {{ school_name }}",
            "email_text": "Kính gửi phụ huynh em {{ student_names }}: họp thứ Bảy.",
            "sms_text": "PH em {{ student_names }}: hop phu huynh thu Bay.",
            "zalo_text": "Kính gửi phụ huynh em {{ student_names }}: họp thứ Bảy.",
            "messenger_text": "Kính gửi phụ huynh em {{ student_names }}: họp thứ Bảy.",
            "zns": {"template_id": TEMPLATE_ID, "params": {
                "parent_name": "recipient_name", "student_name": "student_names", "school_name": "school_name"}}
        }),
    )
    .await
}

async fn post_raw(app: &TestApp, path: &str, headers: &[(&str, String)], body: &str) -> StatusCode {
    let mut r = app
        .http
        .post(format!("{}{path}", app.base))
        .body(body.to_string());
    for (k, v) in headers {
        r = r.header(*k, v);
    }
    r.send().await.unwrap().status()
}

async fn get_status(app: &TestApp, path_and_query: &str) -> (StatusCode, String) {
    let r = app
        .http
        .get(format!("{}{path_and_query}", app.base))
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap_or_default())
}

/// Posts a Zalo event signed as Zalo would (or with `sig` when given).
async fn zalo_event(app: &TestApp, event: Value, sig: Option<&str>) -> StatusCode {
    let ts = event["timestamp"].as_str().unwrap_or("").to_string();
    let body = event.to_string();
    let mut headers = vec![("content-type", "application/json".to_string())];
    match sig {
        Some("") => {}
        Some(s) => headers.push(("x-zevent-signature", s.to_string())),
        None => headers.push(("x-zevent-signature", zalo_signature(&body, &ts))),
    }
    post_raw(app, "/webhooks/zns", &headers, &body).await
}

async fn progress(app: &TestApp, c: i64) -> Value {
    app.get(&format!("/api/v1/campaigns/{c}/progress")).await.1
}

async fn wait_state(app: &TestApp, c: i64, delivery: i64, state: &str) {
    let found = wait_for(Duration::from_secs(10), || async {
        app.deliveries(c)
            .await
            .iter()
            .any(|d| d["id"] == delivery && d["state"] == state)
            .then_some(())
    })
    .await;
    if found.is_none() {
        panic!(
            "delivery {delivery} never {state}: {:?}",
            app.deliveries(c).await
        );
    }
}

/// Waits until `n` events of `provider` were stored and processed; returns their counts by outcome.
async fn events_processed(app: &TestApp, provider: &str, n: i64) -> Value {
    let found = wait_for(Duration::from_secs(5), || async {
        let v = app.get("/api/v1/webhooks/stats").await.1;
        let counts = v["events"][provider].clone();
        let total: i64 = counts
            .as_object()
            .map(|o| o.values().filter_map(Value::as_i64).sum())
            .unwrap_or(0);
        (counts["pending"].is_null() && total == n).then_some(counts)
    })
    .await;
    found.unwrap_or_else(|| panic!("{n} {provider} events never processed"))
}

/// Waits until `channel` is paused for the campaign; returns the progress then.
async fn wait_paused(app: &TestApp, c: i64, channel: &str) -> Value {
    let found = wait_for(Duration::from_secs(10), || async {
        let p = progress(app, c).await;
        p["by_channel"][channel]["paused"].is_string().then_some(p)
    })
    .await;
    found.unwrap_or_else(|| panic!("{channel} never paused for campaign {c}"))
}

/// Zalo answering every ZNS send with `code`, and Loa (small batches, so that what one batch puts in
/// flight is a small part of the audience) with 20 parents and a `zalo_zns, sms` campaign template.
async fn zns_refusing(code: i64) -> (wiremock::MockServer, ZaloDouble, TestApp, Tree, i64) {
    let (server, zalo) = ZaloDouble::start("a0", "r0").await;
    let uri = server.uri();
    let app = spawn_app(|cfg, _| {
        zns_provider(cfg, &uri, "a0", "r0");
        cfg.dispatch.concurrency = 4;
        cfg.dispatch.batch_size = 4;
    })
    .await;
    let t = tree(&app).await;
    parents_with_children(&app, &t, 20).await;
    zalo.0.lock().unwrap().zns_error = Some(code);
    let tpl = all_channels_template(&app, t.school).await;
    (server, zalo, app, t, tpl)
}

#[tokio::test]
async fn zns_sms_email_campaign_reaches_a_mixed_audience_and_reports_per_channel() {
    let (zalo_server, zalo) = ZaloDouble::start("a0", "r0").await;
    let (esms_server, esms) = SmsDouble::esms().await;
    let app = spawn_app(|cfg, _| {
        zns_provider(cfg, &zalo_server.uri(), "a0", "r0");
        esms_provider(cfg, &esms_server.uri());
    })
    .await;
    let t = tree(&app).await;
    // Parents 0-2 have phones (1 is not on Zalo); parent 3 has only an email.
    parents_with_children(&app, &t, 3).await;
    let s = app.contact(json!({"org_id": t.class_a, "role": "student", "full_name": "Học Sinh 3", "student_code": "HS0003"})).await;
    let p = app.contact(json!({"org_id": t.school, "role": "parent", "full_name": "Phụ Huynh 3", "email": "ph3@example.vn"})).await;
    app.link(p, s).await;
    zalo.0
        .lock()
        .unwrap()
        .phone_errors
        .insert("84912000001".into(), -118);

    let tpl = all_channels_template(&app, t.school).await;
    let c = campaign(
        &app,
        t.school,
        tpl,
        &["parent"],
        &["zalo_zns", "sms", "email"],
    )
    .await;
    app.start(c).await;
    app.wait_done(c).await;

    let ds = app.deliveries(c).await;
    let on = |ch: &str| {
        ds.iter()
            .filter(|d| d["channel"] == ch)
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(on("zalo_zns").len(), 2, "{ds:?}");
    assert_eq!(on("sms").len(), 1, "{ds:?}");
    assert_eq!(on("email").len(), 1, "{ds:?}");
    let sms = &on("sms")[0];
    assert!(sms["reason"].as_str().unwrap().contains("-118"), "{sms}");
    let body = &esms.sent()[0];
    assert_eq!(body["Phone"], "0912000001");
    assert_eq!(body["RequestId"], sms["id"].to_string());

    // Receipts: Zalo reports one ZNS message delivered (tracking_id at the top level, as one source
    // shows), eSMS reports the SMS delivered through the signed callback it was given.
    let zns_id = on("zalo_zns")[0]["id"].as_i64().unwrap();
    let ev = json!({"app_id": APP_ID, "event_name": "user_received_message", "timestamp": "1714529560000",
                    "msg_id": "zmsg000001", "tracking_id": zns_id.to_string()});
    assert_eq!(zalo_event(&app, ev, None).await, StatusCode::OK);
    wait_state(&app, c, zns_id, "delivered").await;
    let cb = body["CallbackUrl"].as_str().unwrap();
    let cb_path = &cb[cb.find("/webhooks/").unwrap()..];
    let sms_id = sms["id"].as_i64().unwrap();
    let (st, _) = get_status(&app, &format!("{cb_path}&SMSID=esms-1&SendStatus=5&RequestId={sms_id}&SendSuccess=1&SendFailed=0&telcoid=1&phonenumber=0912000001")).await;
    assert_eq!(st, StatusCode::OK);
    wait_state(&app, c, sms_id, "delivered").await;

    let report = progress(&app, c).await["by_channel"].clone();
    assert_eq!(report["zalo_zns"]["sent"], 2, "{report}");
    assert_eq!(report["zalo_zns"]["delivered"], 1, "{report}");
    assert_eq!(report["zalo_zns"]["failed"], 1, "{report}");
    assert_eq!(
        report["zalo_zns"]["reasons"]["provider_rejected"], 1,
        "{report}"
    );
    assert_eq!(report["sms"]["sent"], 1, "{report}");
    assert_eq!(report["sms"]["delivered"], 1, "{report}");
    assert_eq!(report["email"]["delivered"], 1, "{report}");
}

#[tokio::test]
async fn a_template_zalo_refuses_pauses_the_channel_until_staff_resume_or_skip_it() {
    let (_server, zalo, app, t, tpl) = zns_refusing(-112).await;
    let c = campaign(&app, t.school, tpl, &["parent"], &["zalo_zns", "sms"]).await;
    app.start(c).await;

    let p = wait_paused(&app, c, "zalo_zns").await;
    assert!(
        p["by_channel"]["zalo_zns"]["paused"]
            .as_str()
            .unwrap()
            .contains("-112"),
        "{p}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let p = progress(&app, c).await;
    assert_eq!(
        p["progress"]["by_state"]["queued"], 20,
        "everyone waits, nobody failed: {p}"
    );
    let tried = zalo.0.lock().unwrap().zns_requests;
    assert!(
        tried <= 8,
        "the campaign did not burn its audience against the error: {tried}"
    );
    assert_eq!(app.sink_lines("sms").len(), 0);

    // Zalo approves the template again; staff resume: everyone gets it by ZNS.
    zalo.0.lock().unwrap().zns_error = None;
    let (st, v) = app
        .post(
            &format!("/api/v1/campaigns/{c}/channels/zalo_zns/resume"),
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    app.wait_done(c).await;
    assert_eq!(zalo.0.lock().unwrap().sent.len(), 20);

    // Another campaign hits the same refusal; this time staff skip ZNS: everyone moves on to SMS.
    zalo.0.lock().unwrap().zns_error = Some(-109);
    let c2 = campaign(&app, t.school, tpl, &["parent"], &["zalo_zns", "sms"]).await;
    app.start(c2).await;
    wait_paused(&app, c2, "zalo_zns").await;
    let (st, v) = app
        .post(
            &format!("/api/v1/campaigns/{c2}/channels/zalo_zns/skip"),
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    app.wait_done(c2).await;
    let report = progress(&app, c2).await["by_channel"].clone();
    assert_eq!(report["sms"]["sent"], 20, "{report}");
    assert_eq!(
        report["zalo_zns"]["reasons"]["channel_skipped"], 20,
        "{report}"
    );
    let (st, _) = app
        .post(
            &format!("/api/v1/campaigns/{c2}/channels/zalo_zns/resume"),
            json!({}),
        )
        .await;
    assert_eq!(
        st,
        StatusCode::OK,
        "the pause record can be lifted after a skip"
    );
}

#[tokio::test]
async fn a_used_up_zns_daily_quota_closes_the_channel_until_tomorrow() {
    let (_server, zalo, app, t, tpl) = zns_refusing(-115).await;
    let c = campaign(&app, t.school, tpl, &["parent"], &["zalo_zns", "sms"]).await;
    app.start(c).await;
    wait_for(Duration::from_secs(10), || async {
        (zalo.0.lock().unwrap().zns_requests > 0).then_some(())
    })
    .await
    .expect("tried");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let tried = zalo.0.lock().unwrap().zns_requests;
    // Concurrency 4: only the sends already in flight when the first refusal came may reach Zalo; the
    // rest of their batch, and the batch claimed ahead, wait.
    assert!(
        tried <= 4,
        "the rest of the campaign waits instead of hitting the quota: {tried}"
    );
    let ds = app.deliveries(c).await;
    assert!(
        ds.iter()
            .all(|d| d["state"] == "queued" && d["channel"] == "zalo_zns"),
        "nobody failed or fell back: {ds:?}"
    );
    assert_eq!(app.sink_lines("sms").len(), 0);
}

#[tokio::test]
async fn zalo_oa_refreshes_on_216_and_sends_transaction_messages_with_receipts() {
    // Zalo holds a newer pair than the one Loa starts with: the first send gets -216.
    let (server, zalo) = ZaloDouble::start("fresh", "r0").await;
    let uri = server.uri();
    let app = spawn_app(|cfg, _| {
        oa_provider(cfg, &uri, "stale", "r0");
        zns_provider(cfg, &uri, "stale", "r0");
    })
    .await;
    let t = tree(&app).await;
    let s = app.contact(json!({"org_id": t.class_a, "role": "student", "full_name": "Học Sinh 1", "student_code": "HS1"})).await;
    let p1 = app.contact(json!({"org_id": t.school, "role": "parent", "full_name": "Phụ Huynh 1", "zalo_user_id": "8000000000000000001", "phone": "0912000001"})).await;
    let p2 = app.contact(json!({"org_id": t.school, "role": "parent", "full_name": "Phụ Huynh 2", "zalo_user_id": "8000000000000000002", "phone": "0912000002"})).await;
    app.link(p1, s).await;
    app.link(p2, s).await;
    // Parent 2 has not talked to the OA lately: -230, falls back to ZNS.
    zalo.0
        .lock()
        .unwrap()
        .user_errors
        .insert("8000000000000000002".into(), -230);
    let tpl = app
        .create("/api/v1/templates", json!({
            "org_id": t.school, "name": "Thông báo học phí",
            "zalo_text": "Kính gửi phụ huynh em {{ student_names }}: học phí tháng 11.",
            "zalo_transaction": {"header": "Thông báo từ {{ school_name }}",
                "table": [{"key": "Học sinh", "value": "{{ student_names }}"}],
                "button": {"title": "Xem chi tiết", "url": "https://truong.edu.vn/hoc-phi"}},
            "zns": {"template_id": TEMPLATE_ID, "params": {
                "parent_name": "recipient_name", "student_name": "student_names", "school_name": "school_name"}}
        }))
        .await;
    let c = campaign(&app, t.school, tpl, &["parent"], &["zalo", "zalo_zns"]).await;
    app.start(c).await;
    app.wait_done(c).await;

    {
        let st = zalo.0.lock().unwrap();
        assert_eq!(st.refreshes, 1, "one refresh for OA and ZNS together");
        assert_eq!(st.oa_sent.len(), 1);
        let (kind, body) = &st.oa_sent[0];
        assert_eq!(kind, "transaction");
        let payload = &body["message"]["attachment"]["payload"];
        assert_eq!(
            payload["elements"][0]["content"],
            "Thông báo từ Trường Tiểu học Mỹ Phú"
        );
        assert_eq!(payload["elements"][2]["content"][0]["value"], "Học Sinh 1");
        assert_eq!(st.sent.len(), 1, "parent 2 reached by ZNS instead");
    }
    let stored = app.state.store.zalo_token(APP_ID).await.unwrap().unwrap();
    assert_eq!(
        stored.refresh_token, "refresh-1",
        "the single-use refresh token's successor is stored"
    );

    // Receipts by OA message id: read arrives before delivered, and delivered does not undo it.
    let oa = app
        .deliveries(c)
        .await
        .into_iter()
        .find(|d| d["channel"] == "zalo")
        .unwrap();
    let id = oa["id"].as_i64().unwrap();
    let seen = json!({"app_id": APP_ID, "event_name": "user_seen_message", "timestamp": "1714529561000",
        "sender": {"id": "8000000000000000001"}, "message": {"msg_ids": ["oamsg000001"]}});
    assert_eq!(zalo_event(&app, seen.clone(), None).await, StatusCode::OK);
    wait_state(&app, c, id, "read").await;
    let got = json!({"app_id": APP_ID, "event_name": "user_received_message", "timestamp": "1714529562000",
        "message": {"msg_id": "oamsg000001"}});
    assert_eq!(zalo_event(&app, got, None).await, StatusCode::OK);
    // A replay of the seen event is stored once.
    assert_eq!(zalo_event(&app, seen, None).await, StatusCode::OK);
    let counts = events_processed(&app, "zns", 2).await;
    assert_eq!(counts["applied"], 1, "{counts}");
    assert_eq!(
        counts["unknown"], 1,
        "late delivered after read changes nothing: {counts}"
    );
    wait_state(&app, c, id, "read").await;
}

#[tokio::test]
async fn zalo_webhooks_refuse_bad_signatures_and_track_followers() {
    let (server, _zalo) = ZaloDouble::start("a0", "r0").await;
    let uri = server.uri();
    let app = spawn_app(|cfg, _| {
        oa_provider(cfg, &uri, "a0", "r0");
        zns_provider(cfg, &uri, "a0", "r0");
    })
    .await;
    let t = tree(&app).await;
    let s = app.contact(json!({"org_id": t.class_a, "role": "student", "full_name": "Học Sinh 1", "student_code": "HS1"})).await;
    let p = app.contact(json!({"org_id": t.school, "role": "parent", "full_name": "Phụ Huynh 1", "zalo_user_id": "8000000000000000009", "phone": "0912000009"})).await;
    app.link(p, s).await;

    let unfollow = json!({"app_id": APP_ID, "oa_id": "1", "event_name": "unfollow", "timestamp": "1714529563000",
        "follower": {"id": "8000000000000000009"}, "user_id_by_app": "55"});
    assert_eq!(
        zalo_event(&app, unfollow.clone(), Some("mac=00")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        zalo_event(&app, unfollow.clone(), Some("")).await,
        StatusCode::UNAUTHORIZED
    );
    let forged = zalo_signature(&unfollow.to_string(), "1714529563001");
    assert_eq!(
        zalo_event(&app, unfollow.clone(), Some(&forged)).await,
        StatusCode::UNAUTHORIZED
    );
    let v = app.get("/api/v1/webhooks/stats").await.1;
    assert_eq!(
        v["events"],
        json!({}),
        "nothing recorded from refused events: {v}"
    );

    assert_eq!(zalo_event(&app, unfollow, None).await, StatusCode::OK);
    let unknown = json!({"app_id": APP_ID, "event_name": "user_received_message", "timestamp": "1714529564000",
        "message": {"msg_id": "never-sent"}});
    assert_eq!(
        zalo_event(&app, unknown, None).await,
        StatusCode::OK,
        "unknown messages are tolerated"
    );
    let counts = events_processed(&app, "zns", 2).await;
    assert_eq!(
        (counts["applied"].as_i64(), counts["unknown"].as_i64()),
        (Some(1), Some(1)),
        "{counts}"
    );

    // Unfollowed: the OA cannot reach the parent, so the campaign goes straight to ZNS.
    let tpl = all_channels_template(&app, t.school).await;
    let c = campaign(&app, t.school, tpl, &["parent"], &["zalo", "zalo_zns"]).await;
    app.start(c).await;
    app.wait_done(c).await;
    let ds = app.deliveries(c).await;
    assert_eq!(ds[0]["channel"], "zalo_zns", "{ds:?}");
}

#[tokio::test]
async fn messenger_sends_tagged_messages_and_applies_watermarks() {
    let (server, fb) = MessengerDouble::start().await;
    let uri = server.uri();
    let app = spawn_app(|cfg, _| messenger_provider(cfg, &uri)).await;
    let t = tree(&app).await;
    let s = app.contact(json!({"org_id": t.class_a, "role": "student", "full_name": "Học Sinh 1", "student_code": "HS1"})).await;
    for (i, psid) in ["6000000000000001", "6000000000000002"].iter().enumerate() {
        let p = app
            .contact(
                json!({"org_id": t.school, "role": "parent", "full_name": format!("Phụ Huynh {i}"),
            "facebook_psid": psid, "phone": format!("091200000{i}")}),
            )
            .await;
        app.link(p, s).await;
    }
    fb.0.lock()
        .unwrap()
        .psid_errors
        .insert("6000000000000002".into(), (10, 2018278));
    let tpl = all_channels_template(&app, t.school).await;
    let c = app
        .create(
            "/api/v1/campaigns",
            json!({"org_id": t.school, "name": "Họp", "template_id": tpl,
            "audience": {"org_id": t.school, "roles": ["parent"]}, "channels": ["messenger", "sms"],
            "messenger_tag": "ACCOUNT_UPDATE"}),
        )
        .await;
    app.start(c).await;
    app.wait_done(c).await;
    let sent = fb.0.lock().unwrap().sent.clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["tag"], "ACCOUNT_UPDATE");
    let ds = app.deliveries(c).await;
    assert_eq!(
        ds.iter().filter(|d| d["channel"] == "sms").count(),
        1,
        "outside the window: SMS instead"
    );

    // Handshake, then signed events.
    let (st, body) = get_status(
        &app,
        &format!(
            "/webhooks/facebook?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=42"
        ),
    )
    .await;
    assert_eq!((st, body.as_str()), (StatusCode::OK, "42"));
    let (st, _) = get_status(
        &app,
        "/webhooks/facebook?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=42",
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    let id = ds.iter().find(|d| d["channel"] == "messenger").unwrap()["id"]
        .as_i64()
        .unwrap();
    let far_future = 4_102_444_800_000i64;
    let read = json!({"object": "page", "entry": [{"id": "p", "time": 1, "messaging": [
        {"sender": {"id": "6000000000000001"}, "recipient": {"id": "p"}, "timestamp": 1, "read": {"watermark": far_future}}]}]}).to_string();
    let bad = post_raw(
        &app,
        "/webhooks/facebook",
        &[("x-hub-signature-256", "sha256=00".into())],
        &read,
    )
    .await;
    assert_eq!(bad, StatusCode::UNAUTHORIZED);
    let missing = post_raw(&app, "/webhooks/facebook", &[], &read).await;
    assert_eq!(missing, StatusCode::UNAUTHORIZED);
    let good = post_raw(
        &app,
        "/webhooks/facebook",
        &[("x-hub-signature-256", fb_signature(&read))],
        &read,
    )
    .await;
    assert_eq!(good, StatusCode::OK);
    wait_state(&app, c, id, "read").await;
    // A delivery (by mid) after the read changes nothing.
    let delivered = json!({"object": "page", "entry": [{"id": "p", "time": 1, "messaging": [
        {"sender": {"id": "6000000000000001"}, "recipient": {"id": "p"}, "delivery": {"mids": ["m_00001"], "watermark": far_future}}]}]}).to_string();
    let ok = post_raw(
        &app,
        "/webhooks/facebook",
        &[("x-hub-signature-256", fb_signature(&delivered))],
        &delivered,
    )
    .await;
    assert_eq!(ok, StatusCode::OK);
    let counts = events_processed(&app, "facebook", 2).await;
    assert_eq!(
        counts["unknown"], 1,
        "the late delivery moved nothing: {counts}"
    );
    wait_state(&app, c, id, "read").await;
}

/// Messenger's watermark means "everything sent before or at this time": one equal to the instant
/// Facebook received the message counts. Loa recorded sent_at after the answer (and after its batch
/// of outcomes), so such a watermark moved nothing.
#[tokio::test]
async fn a_messenger_watermark_at_the_send_instant_counts() {
    let (server, fb) = MessengerDouble::start().await;
    fb.0.lock().unwrap().delay = Duration::from_millis(300);
    let uri = server.uri();
    let app = spawn_app(|cfg, _| messenger_provider(cfg, &uri)).await;
    let t = tree(&app).await;
    let s = app.contact(json!({"org_id": t.class_a, "role": "student", "full_name": "Học Sinh 1", "student_code": "HS1"})).await;
    let p = app
        .contact(
            json!({"org_id": t.school, "role": "parent", "full_name": "Phụ Huynh",
            "facebook_psid": "6000000000000001"}),
        )
        .await;
    app.link(p, s).await;
    let tpl = all_channels_template(&app, t.school).await;
    let c = app
        .create(
            "/api/v1/campaigns",
            json!({"org_id": t.school, "name": "Họp", "template_id": tpl,
            "audience": {"org_id": t.school, "roles": ["parent"]}, "channels": ["messenger"]}),
        )
        .await;
    app.start(c).await;
    app.wait_done(c).await;
    let watermark = fb.0.lock().unwrap().received_at_ms[0];
    let id = app.deliveries(c).await[0]["id"].as_i64().unwrap();
    let read = json!({"object": "page", "entry": [{"id": "p", "time": 1, "messaging": [
        {"sender": {"id": "6000000000000001"}, "recipient": {"id": "p"}, "timestamp": watermark,
         "read": {"watermark": watermark}}]}]})
    .to_string();
    let ok = post_raw(
        &app,
        "/webhooks/facebook",
        &[("x-hub-signature-256", fb_signature(&read))],
        &read,
    )
    .await;
    assert_eq!(ok, StatusCode::OK);
    wait_state(&app, c, id, "read").await;
}

#[tokio::test]
async fn esms_duplicate_request_id_counts_as_sent_and_bad_callbacks_are_refused() {
    let (server, esms) = SmsDouble::esms().await;
    let app = spawn_app(|cfg, _| esms_provider(cfg, &server.uri())).await;
    let t = tree(&app).await;
    parents_with_children(&app, &t, 2).await;
    // As if an earlier attempt at delivery 2 reached eSMS before a crash.
    esms.0.lock().unwrap().request_ids.insert("2".into());
    let tpl = template(&app, t.school).await;
    let c = campaign(&app, t.school, tpl, &["parent"], &["sms"]).await;
    app.start(c).await;
    app.wait_done(c).await;
    let ds = app.deliveries(c).await;
    assert!(ds.iter().all(|d| d["state"] == "sent"), "{ds:?}");
    assert_eq!(esms.sent().len(), 1, "the duplicate was not sent twice");

    let (st, _) = get_status(
        &app,
        "/webhooks/esms?id=1&sig=deadbeef&SendStatus=5&SendSuccess=1",
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = get_status(
        &app,
        "/webhooks/esms?SendStatus=5&SendSuccess=1&RequestId=1",
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // A failure report moves the person on (here: nowhere, SMS was the only channel).
    let body = &esms.sent()[0];
    let cb = body["CallbackUrl"].as_str().unwrap();
    let path = &cb[cb.find("/webhooks/").unwrap()..];
    let rid = body["RequestId"].as_str().unwrap();
    let (st, _) = get_status(
        &app,
        &format!("{path}&SendStatus=5&SendSuccess=0&SendFailed=1&RequestId={rid}"),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    wait_state(&app, c, rid.parse().unwrap(), "failed").await;
}

#[tokio::test]
async fn esms_no_balance_pauses_sms_for_the_campaign() {
    let (server, esms) = SmsDouble::esms().await;
    let app = spawn_app(|cfg, _| esms_provider(cfg, &server.uri())).await;
    esms.0.lock().unwrap().error = Some("103".into());
    let t = tree(&app).await;
    parents_with_children(&app, &t, 10).await;
    let tpl = template(&app, t.school).await;
    let c = campaign(&app, t.school, tpl, &["parent"], &["sms", "email"]).await;
    app.start(c).await;
    let p = wait_paused(&app, c, "sms").await;
    assert!(
        p["by_channel"]["sms"]["paused"]
            .as_str()
            .unwrap()
            .contains("103"),
        "{p}"
    );
    assert_eq!(
        app.sink_lines("email").len(),
        0,
        "nobody was failed over to email one by one"
    );
}

#[tokio::test]
async fn speedsms_and_a_generic_gateway_send_and_take_reports() {
    let (server, speed) = SmsDouble::speedsms().await;
    let app = spawn_app(|cfg, _| speedsms_provider(cfg, &server.uri())).await;
    let c = run_parents_campaign(&app, 2, &["sms"]).await;
    let sent = speed.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0]["sms_type"], 3);
    assert_eq!(sent[0]["sender"], "THMYPHU");
    // SpeedSMS reports on parent 0's message by the transaction id it gave that message.
    let tran = sent
        .iter()
        .find(|b| b["to"][0] == "84912000000")
        .map(|b| b["tranId"].clone())
        .unwrap();
    let ds = app.deliveries(c).await;
    let id_of = |name: &str| {
        ds.iter()
            .find(|d| d["full_name"] == name)
            .and_then(|d| d["id"].as_i64())
            .unwrap()
    };
    let (id, other) = (id_of("Phụ Huynh 0"), id_of("Phụ Huynh 1"));
    let report =
        json!({"type": "report", "tranId": tran, "phone": "84912000000", "status": 0}).to_string();
    let st = post_raw(&app, "/webhooks/speedsms?token=wrong", &[], &report).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let st = post_raw(
        &app,
        &format!("/webhooks/speedsms?token={SPEEDSMS_HOOK}"),
        &[],
        &report,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    wait_state(&app, c, id, "delivered").await;
    wait_state(&app, c, other, "sent").await;

    let (server, gw) = SmsDouble::gateway().await;
    gw.0.lock()
        .unwrap()
        .phone_errors
        .insert("84912000001".into(), "blocked".into());
    let app = spawn_app(|cfg, _| gateway_provider(cfg, &server.uri())).await;
    let c = run_parents_campaign(&app, 2, &["sms", "email"]).await;
    let sent = gw.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["to"], "84912000000");
    let ds = app.deliveries(c).await;
    assert_eq!(
        ds.iter().filter(|d| d["channel"] == "email").count(),
        1,
        "refused by the gateway: email instead"
    );
}
