//! Erasing a person: nothing personal remains (contact, links, names and addresses in deliveries),
//! reports keep anonymous counts, and an unknown id is a JSON 404.

mod common;

use common::*;
use reqwest::StatusCode;

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
