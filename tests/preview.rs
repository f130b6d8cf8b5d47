//! The reach and cost preview: people per channel by the campaign's order and the addresses held,
//! who cannot be reached and why, SMS parts with and without accents, cost from configured prices
//! (per carrier), sample texts; the same figures kept with the approval; the CLI's summary.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn preview_counts_reach_parts_and_cost_and_is_kept_with_the_approval() {
    let app = spawn_app_with(
        |cfg, _| {
            cfg.prices.sms_segment = 800.0;
            cfg.prices
                .sms_segment_by_carrier
                .insert("vinaphone".into(), 750.0);
            cfg.prices.email = 0.0;
        },
        false,
    )
    .await;
    let t = tree(&app).await;
    // 6 parents through their children: 2 on Zalo, 2 with a phone only, 1 with an email only,
    // 1 who opted out of SMS and has nothing else; plus 1 staff member with no address at all.
    let people = [
        json!({"phone": "0912000001", "zalo_user_id": "z1"}),
        json!({"phone": "0912000002", "zalo_user_id": "z2"}),
        json!({"phone": "0912000003"}),
        json!({"phone": "0372000004"}),
        json!({"email": "ph5@example.vn"}),
        json!({"phone": "0912000006"}),
    ];
    for (i, addr) in people.iter().enumerate() {
        let s = app
            .contact(json!({"org_id": t.class_a, "role": "student", "full_name": format!("Học Sinh {i}"), "student_code": format!("HS{i}")}))
            .await;
        let mut body =
            json!({"org_id": t.school, "role": "parent", "full_name": format!("Phụ Huynh {i}")});
        for (k, v) in addr.as_object().unwrap() {
            body[k] = v.clone();
        }
        let p = app.contact(body).await;
        app.link(p, s).await;
        if i == 5 {
            app.post(
                &format!("/api/v1/contacts/{p}/opt-outs"),
                json!({"channel": "sms"}),
            )
            .await;
        }
    }
    let tpl = app
        .create(
            "/api/v1/templates",
            json!({"org_id": t.school, "name": "Nhắc nhở",
                   "sms_text": "Kính gửi phụ huynh em {{ student_names }}: nhà trường nhắc con không chia sẻ mật khẩu trên mạng.",
                   "zalo_text": "Kính gửi phụ huynh em {{ student_names }}.",
                   "email_subject": "Nhắc nhở", "email_text": "Kính gửi phụ huynh em {{ student_names }}."}),
        )
        .await;
    let c = campaign(&app, t.school, tpl, &["parent"], &["zalo", "sms", "email"]).await;
    let (s, p) = app
        .post(&format!("/api/v1/campaigns/{c}/preview"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["people"], 6, "{p}");
    assert_eq!(p["by_channel"]["zalo"]["people"], 2, "{p}");
    assert_eq!(p["by_channel"]["email"]["people"], 1, "{p}");
    let sms = &p["by_channel"]["sms"];
    assert_eq!(sms["people"], 2, "{p}");
    // About 95 characters: two UCS-2 parts with diacritics, one GSM-7 part without; the sink sends
    // unaccented, as brandname contracts require.
    assert_eq!(
        (
            sms["segments_with_accents"].as_u64(),
            sms["segments_without_accents"].as_u64(),
            sms["segments"].as_u64()
        ),
        (Some(4), Some(2), Some(2)),
        "{p}"
    );
    assert_eq!(
        sms["by_carrier"],
        json!({"vinaphone": 1, "viettel": 1}),
        "{p}"
    );
    assert_eq!(
        sms["cost"],
        750.0 + 800.0,
        "Vinaphone at its own price, Viettel at the default"
    );
    assert_eq!(p["unreachable"], json!({"opted_out": 1}), "{p}");
    assert_eq!(p["total_cost"], 1550.0);
    assert!(
        p["samples"]["sms"]["text"]
            .as_str()
            .unwrap()
            .starts_with("Kinh gui phu huynh em Nguyen"),
        "the SMS sample is shown as it will be sent: {p}"
    );
    // Nothing was written by the preview.
    let (_, progress) = app.get(&format!("/api/v1/campaigns/{c}/progress")).await;
    assert_eq!(progress["progress"]["total"], 0);
    // The approver sees the same figures, and they are kept with the approval.
    app.approve(c).await;
    let (_, v) = app.get(&format!("/api/v1/campaigns/{c}")).await;
    assert_eq!(
        v["approval"]["snapshot"]["preview"]["by_channel"], p["by_channel"],
        "{v}"
    );
    // The command line prints the same in Vietnamese.
    let out = app.loa_cli(&["campaign", "preview", &c.to_string()]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("6 người nhận") && text.contains("đã từ chối nhận tin"),
        "{text}"
    );
    app.stop().await;
}
