//! Erasing a person: nothing personal remains (contact, links, names and addresses in deliveries,
//! webhook events, and nothing readable in the database file or its WAL), reports keep anonymous
//! counts, and an unknown id is a JSON 404. Provider texts quoting an address are stored masked.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn erasure_removes_personal_data_and_keeps_anonymous_counts() {
    let app = spawn_app(|_, _| {}).await;
    let t = tree(&app).await;
    let parents = parents_with_children(&app, &t, 3).await;
    let tpl = template(&app, t.school).await;
    let c = campaign(&app, t.school, tpl, &["parent"], &["sms"]).await;
    app.start(c).await;
    app.wait_done(c).await;

    let gone = parents[0];
    let (st, _) = app.delete(&format!("/api/v1/contacts/{gone}")).await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = app.get(&format!("/api/v1/contacts/{gone}")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    let ds = app.deliveries(c).await;
    assert_eq!(ds.len(), 3, "the delivery stays, for the counts");
    let text = serde_json::to_string(&ds).unwrap();
    assert!(!text.contains("Phụ Huynh 0"), "no name left: {text}");
    assert!(!text.contains("+84912000000"), "no phone left: {text}");
    assert_eq!(ds.iter().filter(|d| d["contact_id"].is_null()).count(), 1);

    let (_, report) = app.get(&format!("/api/v1/campaigns/{c}/report")).await;
    assert_eq!(report["by_org"][0]["targeted"], 3, "{report}");

    // A new campaign no longer reaches the erased parent (their child stays, without the link).
    let c2 = campaign(&app, t.school, tpl, &["parent"], &["sms"]).await;
    app.start(c2).await;
    app.wait_done(c2).await;
    assert_eq!(app.deliveries(c2).await.len(), 2);

    let (st, body) = app.delete(&format!("/api/v1/contacts/{gone}")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn provider_texts_are_stored_with_the_addresses_they_quote_masked() {
    let server = sms_doubles::refusing_gateway().await;
    let app = spawn_app(|cfg, _| sms_doubles::gateway_provider(cfg, &server.uri())).await;
    let c = run_parents_campaign(&app, 2, &["sms", "email"]).await;
    let ds = app.deliveries(c).await;
    assert_eq!(ds.len(), 2);
    for d in &ds {
        let reason = d["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("Invalid destination number"),
            "the provider's words are kept: {d}"
        );
        assert!(
            !reason.contains("912000000") && !reason.contains("912000001"),
            "the number is masked: {reason}"
        );
        assert!(
            reason.contains("****000") || reason.contains("****001"),
            "its last digits stay, to tell people apart: {reason}"
        );
    }
}

/// Whether the store still holds `needle`: on SQLite the database file or its WAL, as raw bytes (an
/// erased value must not linger in free pages either); on PostgreSQL any live row of any table
/// (dead row versions stay in its files until vacuum, as README says).
async fn in_files(app: &TestApp, needle: &str) -> bool {
    if on_postgres() {
        let pool = app.raw_db().await;
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        for t in tables {
            let n: i64 = sqlx::query_scalar(&format!(
                "SELECT count(*) FROM \"{t}\" x WHERE strpos(x::text, $1) > 0"
            ))
            .bind(needle)
            .fetch_one(&pool)
            .await
            .unwrap();
            if n > 0 {
                return true;
            }
        }
        return false;
    }
    ["loa.db", "loa.db-wal"].iter().any(|f| {
        std::fs::read(app.dir.path().join(f))
            .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
    })
}

#[tokio::test]
async fn erasure_leaves_nothing_of_the_person_in_the_database_file_or_its_wal() {
    let app = spawn_app(|_, _| {}).await;
    let t = tree(&app).await;
    let student = app
        .contact(
            json!({"org_id": t.class_a, "role": "student", "full_name": "Trần Thị Xoan",
                        "student_code": "HSXOA7731"}),
        )
        .await;
    let parent = app
        .contact(json!({"org_id": t.school, "role": "parent", "full_name": "Lê Văn Khải",
                        "phone": "0987654321", "email": "khai.le@example.vn",
                        "zalo_user_id": "5550001112223334445", "facebook_psid": "7770001112223334"}))
        .await;
    app.link(parent, student).await;
    let tpl = template(&app, t.school).await;
    let c = campaign(&app, t.school, tpl, &["parent"], &["zalo", "sms"]).await;
    app.start(c).await;
    app.wait_done(c).await;
    // A webhook event naming the parent, kept after it is processed.
    let event = json!({"event_name": "user_send_text", "sender": {"id": "5550001112223334445"},
                       "message": {"text": "Lê Văn Khải đây, phụ huynh em Xoan"}});
    app.state
        .store
        .insert_webhook_event("zalo-oa", "digest-1", &event.to_string(), 1)
        .await
        .unwrap();

    let students_data = ["Trần Thị Xoan", "HSXOA7731"];
    let parents_data = [
        "Lê Văn Khải",
        "+84987654321",
        "84987654321",
        "0987654321",
        "khai.le@example.vn",
        "5550001112223334445",
        "7770001112223334",
    ];
    // (The domestic form of the phone is never stored; the others are, until the erasure.)
    for needle in students_data.iter().chain(&parents_data) {
        assert!(
            *needle == "0987654321" || in_files(&app, needle).await,
            "before erasure, {needle} is in the files"
        );
    }

    // The student first: their name also leaves the parent's message (the children it names).
    let (st, _) = app.delete(&format!("/api/v1/contacts/{student}")).await;
    assert_eq!(st, StatusCode::OK);
    for needle in students_data {
        assert!(
            !in_files(&app, needle).await,
            "{needle} still readable after erasure"
        );
    }
    assert!(
        in_files(&app, "khai.le@example.vn").await,
        "the parent is still there"
    );

    let (st, _) = app.delete(&format!("/api/v1/contacts/{parent}")).await;
    assert_eq!(st, StatusCode::OK);
    for needle in parents_data {
        assert!(
            !in_files(&app, needle).await,
            "{needle} still readable after erasure"
        );
    }
    let (_, report) = app.get(&format!("/api/v1/campaigns/{c}/report")).await;
    assert_eq!(report["by_org"][0]["targeted"], 1, "{report}");
}
