//! Zalo ZNS end to end against the Zalo double: template parameters filled per parent, phone not on
//! Zalo falling back to SMS, an invalid token refreshed once with the single-use pair persisted, and
//! ZNS templates checked when a campaign is created.

mod common;

use common::zalo_double::{APP_ID, TEMPLATE_ID, ZaloDouble, zns_provider};
use common::*;
use reqwest::StatusCode;
use serde_json::json;

/// A template with an SMS body and a ZNS mapping (`params`: Zalo param -> Loa variable).
async fn zns_template(app: &TestApp, org: i64, params: serde_json::Value) -> i64 {
    app.create(
        "/api/v1/templates",
        json!({
            "org_id": org,
            "name": "Nhắc lịch họp phụ huynh",
            "sms_text": "PH em {{ student_names }}: hop phu huynh thu Bay.",
            "zns": {"template_id": TEMPLATE_ID, "params": params}
        }),
    )
    .await
}

/// Zalo (the double) holding the pair `zalo`, and Loa started with the pair `loa` in its config.
/// The mock server must outlive the test, so it is returned.
async fn zalo_and_loa(
    zalo: (&str, &str),
    loa: (&str, &str),
) -> (wiremock::MockServer, ZaloDouble, TestApp, Tree) {
    let (server, double) = ZaloDouble::start(zalo.0, zalo.1).await;
    let uri = server.uri();
    let app = spawn_app(|cfg, _| zns_provider(cfg, &uri, loa.0, loa.1)).await;
    let t = tree(&app).await;
    (server, double, app, t)
}

/// `n` parents of the school sent a fully mapped ZNS campaign on `channels`, run to the end.
async fn run_zns_campaign(app: &TestApp, t: &Tree, n: usize, channels: &[&str]) -> i64 {
    parents_with_children(app, t, n).await;
    let tpl = zns_template(app, t.school, full_mapping()).await;
    let c = campaign(app, t.school, tpl, &["parent"], channels).await;
    app.start(c).await;
    app.wait_done(c).await;
    c
}

fn full_mapping() -> serde_json::Value {
    json!({"parent_name": "recipient_name", "student_name": "student_names", "school_name": "school_name"})
}

#[tokio::test]
async fn zns_reaches_parents_by_phone_and_a_phone_not_on_zalo_falls_back_to_sms() {
    let pair = ("access-0", "refresh-0");
    let (_server, zalo, app, t) = zalo_and_loa(pair, pair).await;
    zalo.0
        .lock()
        .unwrap()
        .phone_errors
        .insert("84912000001".into(), -118);
    let c = run_zns_campaign(&app, &t, 3, &["zalo_zns", "sms"]).await;

    let sent = zalo.0.lock().unwrap().sent.clone();
    assert_eq!(sent.len(), 2, "{sent:?}");
    let deliveries = app.deliveries(c).await;
    for body in &sent {
        let phone = body["phone"].as_str().unwrap();
        let i: usize = phone[phone.len() - 1..].parse().unwrap();
        assert_eq!(
            body["template_data"]["student_name"],
            format!("Học Sinh {i}")
        );
        assert_eq!(
            body["template_data"]["parent_name"],
            format!("Phụ Huynh {i}")
        );
        assert_eq!(
            body["template_data"]["school_name"],
            "Trường Tiểu học Mỹ Phú"
        );
        let d = deliveries
            .iter()
            .find(|d| {
                d["id"].as_i64().map(|id| id.to_string()).as_deref() == body["tracking_id"].as_str()
            })
            .expect("tracking_id is the delivery id");
        assert_eq!(d["channel"], "zalo_zns");
        assert_eq!(d["state"], "sent", "{d}");
    }
    let fell_back: Vec<_> = deliveries
        .iter()
        .filter(|d| d["channel"] == "sms")
        .collect();
    assert_eq!(fell_back.len(), 1, "{deliveries:?}");
    assert_eq!(app.sink_lines("sms").len(), 1);
    assert!(
        app.sink_lines("sms")[0]["to"]
            .as_str()
            .unwrap()
            .ends_with("001")
    );
    app.stop().await;
}

#[tokio::test]
async fn an_invalid_token_is_refreshed_once_and_the_new_pair_is_stored() {
    // Zalo holds a newer access token than Loa's config: every first send is refused with -124.
    let (_server, zalo, app, t) =
        zalo_and_loa(("access-live", "refresh-0"), ("access-stale", "refresh-0")).await;
    run_zns_campaign(&app, &t, 8, &["zalo_zns"]).await;

    let (sent, refreshes, access, refresh) = {
        let st = zalo.0.lock().unwrap();
        (
            st.sent.len(),
            st.refreshes,
            st.access_token.clone(),
            st.refresh_token.clone(),
        )
    };
    assert_eq!(sent, 8, "every parent reached after the refresh");
    assert_eq!(refreshes, 1, "concurrent refusals refresh once");
    let stored = app.state.store.zalo_token(APP_ID).await.unwrap().unwrap();
    assert_eq!(stored.access_token, access);
    assert_eq!(
        stored.refresh_token, refresh,
        "the single-use refresh token is persisted"
    );
    assert!(
        stored.expires_at_ms > loa::clock::now_ms() + 80_000_000,
        "expires_in read from a string"
    );
    app.stop().await;
}

/// Two instances on one database whose access token Zalo refuses at the same moment: only one calls
/// Zalo with the single-use refresh token (the database's refresh lock), the other waits for the
/// pair it stores, and both go on with the new access token.
#[tokio::test]
async fn two_instances_never_spend_one_refresh_token_twice() {
    use loa::store::TokenPair;
    use providers::zalo::token::{TokenManager, TokenSettings};
    use std::sync::Arc;

    let (server, zalo) = ZaloDouble::start("access-live", "refresh-0").await;
    let dir = tempfile::tempdir().unwrap();
    let url = test_database_url(dir.path());
    let a = loa::store::open(&url).await.unwrap();
    a.migrate().await.unwrap();
    let b = loa::store::open(&url).await.unwrap();
    let stale = TokenPair {
        access_token: "access-stale".into(),
        refresh_token: "refresh-0".into(),
        expires_at_ms: 0,
    };
    a.seed_zalo_token(APP_ID, &stale, 1).await.unwrap();
    let settings = TokenSettings {
        app_id: APP_ID.into(),
        secret_key: common::zalo_double::SECRET_KEY.into(),
        oauth_url: format!("{}/v4/oa/access_token", server.uri()),
        timeout: std::time::Duration::from_secs(5),
    };
    let manager = |s: Arc<dyn loa::store::Store>| {
        TokenManager::new(
            settings.clone(),
            Arc::new(loa::dispatch::tokens::StoreTokens(s)),
        )
        .unwrap()
    };
    let (ma, mb) = (manager(a.clone()), manager(b));
    let (ra, rb) = tokio::join!(
        ma.refresh_after_rejection("access-stale"),
        mb.refresh_after_rejection("access-stale")
    );
    assert_eq!(ra.unwrap(), "access-1");
    assert_eq!(
        rb.unwrap(),
        "access-1",
        "the second instance uses the first's pair"
    );
    let calls = zalo.0.lock().unwrap().refresh_calls;
    assert_eq!(
        calls, 1,
        "one call to Zalo with the single-use refresh token"
    );
    let stored = a.zalo_token(APP_ID).await.unwrap().unwrap();
    assert_eq!(stored.refresh_token, "refresh-1", "the newest pair is kept");
}

#[tokio::test]
async fn zns_templates_are_checked_when_created() {
    let (_server, _zalo, app, t) = zalo_and_loa(("a", "r"), ("a", "r")).await;
    // A mapping to a variable that does not exist is refused with the template.
    let (s, v) = app
        .post(
            "/api/v1/templates",
            json!({"org_id": t.school, "name": "x", "zns": {"template_id": TEMPLATE_ID, "params": {"parent_name": "ten_phu_huynh"}}}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v.to_string().contains("ten_phu_huynh"), "{v}");
    // A Zalo parameter left unmapped is refused when the campaign is created, not at send time.
    let tpl = zns_template(
        &app,
        t.school,
        json!({"parent_name": "recipient_name", "school_name": "school_name"}),
    )
    .await;
    let (s, v) = app
        .post(
            "/api/v1/campaigns",
            json!({"org_id": t.school, "name": "c", "template_id": tpl,
                   "audience": {"org_id": t.school, "roles": ["parent"]}, "channels": ["zalo_zns", "sms"]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v.to_string().contains("student_name"), "{v}");
    app.stop().await;
}
