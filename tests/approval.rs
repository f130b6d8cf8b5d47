//! Governance end to end: nothing unapproved is sent from any door (API, CLI, scheduler), an edit
//! after approval resets it, nobody approves their own campaign unless the node allows it, library
//! content flows down the tree only, and the audit log records who did what.

mod common;

use std::time::Duration;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A user at `org` with `roles`, and their token.
async fn user(app: &TestApp, org: i64, username: &str, roles: &[&str]) -> String {
    let id = app
        .create(
            "/api/v1/users",
            json!({"org_id": org, "username": username, "full_name": username, "roles": roles}),
        )
        .await;
    let (s, v) = app
        .post(&format!("/api/v1/users/{id}/tokens"), json!({"name": "t"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["token"].as_str().unwrap().to_string()
}

async fn as_(app: &TestApp, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
    app.call_as(token, Method::POST, path, Some(body)).await
}

/// A school with one staff member reachable by SMS, and a draft campaign to the staff.
async fn school_campaign(app: &TestApp) -> (Tree, i64) {
    let t = tree(app).await;
    app.contact(
        json!({"org_id": t.school, "role": "staff", "full_name": "Cô Lan", "phone": "0912000111"}),
    )
    .await;
    let tpl = template(app, t.school).await;
    let c = campaign(app, t.school, tpl, &["staff"], &["sms"]).await;
    (t, c)
}

async fn state(app: &TestApp, c: i64) -> Value {
    app.get(&format!("/api/v1/campaigns/{c}")).await.1
}

#[tokio::test]
async fn unapproved_campaigns_never_send_from_any_door() {
    let app = spawn_app(|_, _| {}).await;
    let (t, c) = school_campaign(&app).await;

    // API: draft, submitted and rejected campaigns cannot start.
    let start = format!("/api/v1/campaigns/{c}/start");
    let (s, v) = app.post(&start, json!({})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("not_approved")),
        "{v}"
    );
    app.post(&format!("/api/v1/campaigns/{c}/submit"), json!({}))
        .await;
    assert_eq!(app.post(&start, json!({})).await.0, StatusCode::CONFLICT);
    let (s, v) = app
        .call_as(
            &app.approver_token,
            Method::POST,
            &format!("/api/v1/campaigns/{c}/reject"),
            Some(json!({"reason": "Thiếu lời chào"})),
        )
        .await;
    assert_eq!(
        (s, v["state"].as_str(), v["rejection_reason"].as_str()),
        (StatusCode::OK, Some("rejected"), Some("Thiếu lời chào"))
    );
    assert_eq!(app.post(&start, json!({})).await.0, StatusCode::CONFLICT);

    // CLI: the same refusal, with a non-zero exit.
    let out = app
        .loa_cli(&["campaign", "start", &c.to_string(), "--as", "ops"])
        .await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "CLI started an unapproved campaign");
    assert!(err.contains("chưa được phê duyệt"), "{err}");

    // Scheduler: a campaign forced into `scheduled` without approval (a bug or a hand-edited
    // database) goes back to draft instead of sending.
    let store = app.state.store.clone();
    assert!(
        store
            .transition_campaign(
                c,
                &[loa::domain::campaign::CampaignState::Rejected],
                loa::domain::campaign::CampaignState::Scheduled,
                0
            )
            .await
            .unwrap()
    );
    app.state.scheduler_wake.notify_one();
    let back = wait_for(Duration::from_secs(5), || async {
        let v = state(&app, c).await;
        (v["state"] == "draft").then_some(v)
    })
    .await;
    assert!(
        back.is_some(),
        "the scheduler did not refuse: {}",
        state(&app, c).await
    );

    // A run inserted behind the API's back is not fanned out either: the campaign is cancelled.
    store.create_run(c, "forged", 0).await.unwrap();
    app.state.scheduler_wake.notify_one();
    wait_for(Duration::from_secs(5), || async {
        (state(&app, c).await["state"] == "cancelled").then_some(())
    })
    .await
    .expect("forged run refused");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(app.sink_lines("sms").is_empty(), "something was sent");
    assert_eq!(app.deliveries(c).await.len(), 0);

    // And the CLI door does open for an approved campaign.
    let tpl = template(&app, t.school).await;
    let c2 = campaign(&app, t.school, tpl, &["staff"], &["sms"]).await;
    app.approve(c2).await;
    let out = app
        .loa_cli(&["campaign", "start", &c2.to_string(), "--as", "ops"])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    app.state.scheduler_wake.notify_one();
    app.wait_done(c2).await;
    assert_eq!(app.sink_lines("sms").len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn content_changed_after_approval_is_not_sent() {
    let app = spawn_app(|_, _| {}).await;
    let (_, c) = school_campaign(&app).await;
    let send_at = loa::clock::now_ms() + 800;
    let (s, v) = app
        .patch(
            &format!("/api/v1/campaigns/{c}"),
            json!({"send_at": send_at}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    app.approve(c).await;
    let v = state(&app, c).await;
    assert_eq!(
        v["approval"]["hash"].as_str().map(str::len),
        Some(64),
        "{v}"
    );
    let sample = v["approval"]["snapshot"]["samples"]["sms"]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(
        sample.contains("Bảo Ngọc"),
        "the approver saw the text for a sample person: {v}"
    );
    let (s, v) = app
        .post(&format!("/api/v1/campaigns/{c}/start"), json!({}))
        .await;
    assert_eq!(
        (s, v["state"].as_str()),
        (StatusCode::OK, Some("scheduled")),
        "{v}"
    );
    // Someone edits the template's text in the database after approval.
    let pool = app.raw_db().await;
    let tpl = v["template_id"].as_i64().unwrap();
    sqlx::query("UPDATE templates SET sms_text = 'Noi dung khac' WHERE id = $1")
        .bind(tpl)
        .execute(&pool)
        .await
        .unwrap();
    let v = wait_for(Duration::from_secs(5), || async {
        let v = state(&app, c).await;
        (v["state"] == "draft").then_some(v)
    })
    .await
    .expect("the scheduler refused the changed campaign");
    assert!(v["approval"].is_null(), "{v}");
    assert!(app.sink_lines("sms").is_empty());
    app.stop().await;
}

#[tokio::test]
async fn an_edit_after_approval_returns_the_campaign_to_draft() {
    let app = spawn_app_with(|_, _| {}, false).await;
    let (_, c) = school_campaign(&app).await;
    app.approve(c).await;
    assert_eq!(state(&app, c).await["state"], "approved");
    let (s, v) = app
        .patch(&format!("/api/v1/campaigns/{c}"), json!({"name": "Tuần 2"}))
        .await;
    assert_eq!(
        (s, v["state"].as_str(), v["name"].as_str()),
        (StatusCode::OK, Some("draft"), Some("Tuần 2")),
        "{v}"
    );
    assert!(v["approval"].is_null());
    assert_eq!(
        app.post(&format!("/api/v1/campaigns/{c}/start"), json!({}))
            .await
            .0,
        StatusCode::CONFLICT
    );
    // Unknown fields and bad values are refused with a reason, nothing changes.
    let (s, v) = app
        .patch(&format!("/api/v1/campaigns/{c}"), json!({"colour": "red"}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = app
        .patch(&format!("/api/v1/campaigns/{c}"), json!({"channels": []}))
        .await;
    assert_eq!(
        (s, v["error"]["details"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("channels")),
        "{v}"
    );
    // Once running it can no longer be edited.
    app.start(c).await;
    let (s, _) = app
        .patch(&format!("/api/v1/campaigns/{c}"), json!({"name": "Tuần 3"}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    app.stop().await;
}

#[tokio::test]
async fn nobody_approves_their_own_campaign_unless_the_node_allows_it() {
    let app = spawn_app_with(|_, _| {}, false).await;
    let t = tree(&app).await;
    let sibling = app
        .org(Some(t.district), "school", "TH2", "Trường bên")
        .await;
    // A small school's principal who writes and approves.
    let principal = user(
        &app,
        t.school,
        "hieutruong",
        &["author", "approver", "admin"],
    )
    .await;
    let other_approver = user(&app, sibling, "hieutruong2", &["approver"]).await;
    let phong_approver = user(&app, t.district, "truongphong", &["approver", "admin"]).await;
    let (s, v) = as_(
        &app,
        &principal,
        "/api/v1/templates",
        json!({"org_id": t.school, "name": "M", "sms_text": "Chào {{ recipient_name }}"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let tpl = v["id"].as_i64().unwrap();
    let new = |name: &str| json!({"org_id": t.school, "name": name, "template_id": tpl, "audience": {"org_id": t.school, "roles": ["parent"]}, "channels": ["sms"]});
    let (_, v) = as_(&app, &principal, "/api/v1/campaigns", new("A")).await;
    let c = v["id"].as_i64().unwrap();
    as_(
        &app,
        &principal,
        &format!("/api/v1/campaigns/{c}/submit"),
        json!({}),
    )
    .await;
    let approve = format!("/api/v1/campaigns/{c}/approve");
    let (s, v) = as_(&app, &principal, &approve, json!({})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("self_approval")),
        "{v}"
    );
    // An approver of another school does not even see it; the Phòng's approver may approve it.
    assert_eq!(
        as_(&app, &other_approver, &approve, json!({})).await.0,
        StatusCode::NOT_FOUND
    );
    // The school cannot loosen its own policy; the Phòng can.
    let policy = format!("/api/v1/orgs/{}/policy", t.school);
    assert_eq!(
        as_(&app, &principal, &policy, json!({"self_approval": true}))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (s, v) = as_(
        &app,
        &phong_approver,
        &policy,
        json!({"self_approval": true}),
    )
    .await;
    assert_eq!(
        (s, v["self_approval"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{v}"
    );
    let (s, v) = as_(&app, &principal, &approve, json!({})).await;
    assert_eq!(
        (s, v["state"].as_str()),
        (StatusCode::OK, Some("approved")),
        "{v}"
    );
    // With the policy off again, the Phòng approves the next one.
    as_(
        &app,
        &phong_approver,
        &policy,
        json!({"self_approval": false}),
    )
    .await;
    let (_, v) = as_(&app, &principal, "/api/v1/campaigns", new("B")).await;
    let c2 = v["id"].as_i64().unwrap();
    as_(
        &app,
        &principal,
        &format!("/api/v1/campaigns/{c2}/submit"),
        json!({}),
    )
    .await;
    let approve2 = format!("/api/v1/campaigns/{c2}/approve");
    assert_eq!(
        as_(&app, &principal, &approve2, json!({})).await.0,
        StatusCode::FORBIDDEN
    );
    let (s, v) = as_(&app, &phong_approver, &approve2, json!({})).await;
    assert_eq!(
        (s, v["state"].as_str()),
        (StatusCode::OK, Some("approved")),
        "{v}"
    );
    // Approving twice is a conflict, not a second approval.
    assert_eq!(
        as_(&app, &phong_approver, &approve2, json!({})).await.0,
        StatusCode::CONFLICT
    );
    // A rejection needs a reason.
    let (_, v) = as_(&app, &principal, "/api/v1/campaigns", new("C")).await;
    let c3 = v["id"].as_i64().unwrap();
    as_(
        &app,
        &principal,
        &format!("/api/v1/campaigns/{c3}/submit"),
        json!({}),
    )
    .await;
    let (s, v) = as_(
        &app,
        &phong_approver,
        &format!("/api/v1/campaigns/{c3}/reject"),
        json!({"reason": "  "}),
    )
    .await;
    assert_eq!(
        (s, v["error"]["details"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("reason"))
    );
    app.stop().await;
}

#[tokio::test]
async fn an_approver_who_edited_a_campaign_cannot_approve_it() {
    let app = spawn_app_with(|_, _| {}, false).await;
    let t = tree(&app).await;
    let writer = user(&app, t.school, "giaovien", &["author"]).await;
    // The vice-principal both edits and approves at the school.
    let editor = user(&app, t.school, "hieupho", &["author", "approver"]).await;
    let phong_approver = user(&app, t.district, "truongphong", &["approver"]).await;
    let (s, v) = as_(
        &app,
        &writer,
        "/api/v1/templates",
        json!({"org_id": t.school, "name": "M", "sms_text": "Chào {{ recipient_name }}"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let tpl = v["id"].as_i64().unwrap();
    let (s, v) = as_(
        &app,
        &writer,
        "/api/v1/campaigns",
        json!({"org_id": t.school, "name": "A", "template_id": tpl,
               "audience": {"org_id": t.school, "roles": ["parent"]}, "channels": ["sms"]}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let c = v["id"].as_i64().unwrap();
    // The approver widens the audience, then the author submits the edited campaign.
    let (s, v) = app
        .call_as(
            &editor,
            Method::PATCH,
            &format!("/api/v1/campaigns/{c}"),
            Some(json!({"audience": {"org_id": t.school, "roles": ["parent", "staff"]}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = as_(
        &app,
        &writer,
        &format!("/api/v1/campaigns/{c}/submit"),
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let approve = format!("/api/v1/campaigns/{c}/approve");
    let (s, v) = as_(&app, &editor, &approve, json!({})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("self_approval")),
        "whoever changed what is approved must not approve it: {v}"
    );
    assert!(
        v["error"]["message"].as_str().unwrap_or("").contains("sửa"),
        "{v}"
    );
    assert_eq!(state(&app, c).await["state"], "submitted");
    // A second pair of eyes that changed nothing approves it.
    let (s, v) = as_(&app, &phong_approver, &approve, json!({})).await;
    assert_eq!(
        (s, v["state"].as_str()),
        (StatusCode::OK, Some("approved")),
        "{v}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_school_admin_cannot_switch_self_approval_on_for_its_classes() {
    let app = spawn_app_with(|_, _| {}, false).await;
    let t = tree(&app).await;
    let school_admin = user(
        &app,
        t.school,
        "hieutruong",
        &["admin", "author", "approver"],
    )
    .await;
    let phong_admin = user(&app, t.district, "phong", &["admin"]).await;
    for org in [t.class_a, t.school] {
        let (s, v) = as_(
            &app,
            &school_admin,
            &format!("/api/v1/orgs/{org}/policy"),
            json!({"self_approval": true}),
        )
        .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden")),
            "org {org}: {v}"
        );
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("Phòng GD&ĐT"),
            "{v}"
        );
    }
    let (_, v) = app.get(&format!("/api/v1/orgs/{}", t.class_a)).await;
    assert_eq!(v["self_approval"], false, "{v}");
    // From the Phòng, for the school and for a class of it.
    for org in [t.class_a, t.school] {
        let (s, v) = as_(
            &app,
            &phong_admin,
            &format!("/api/v1/orgs/{org}/policy"),
            json!({"self_approval": true}),
        )
        .await;
        assert_eq!(
            (s, v["self_approval"].as_bool()),
            (StatusCode::OK, Some(true)),
            "{v}"
        );
    }
    // The Phòng does not set its own.
    let (s, _) = as_(
        &app,
        &phong_admin,
        &format!("/api/v1/orgs/{}/policy", t.district),
        json!({"self_approval": true}),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    app.stop().await;
}

#[tokio::test]
async fn library_content_flows_down_the_tree_only() {
    let app = spawn_app(|_, _| {}).await;
    let t = tree(&app).await;
    let other_phong = app
        .org(Some(t.province), "district", "PGD2", "Phòng khác")
        .await;
    let far_school = app
        .org(Some(other_phong), "school", "TH9", "Trường xa")
        .await;
    app.contact(json!({"org_id": t.school, "role": "staff", "full_name": "Thầy Nam", "phone": "0912000222"})).await;
    let phong_author = user(&app, t.district, "chuyenvien", &["author"]).await;
    let phong_approver = user(&app, t.district, "truongphong", &["approver"]).await;
    let teacher = user(&app, t.school, "giaovien", &["author"]).await;
    let principal = user(&app, t.school, "hieutruong", &["approver"]).await;
    let far_teacher = user(&app, far_school, "giaovien9", &["author"]).await;

    let body = json!({"org_id": t.district, "name": "Tuần 1: mật khẩu", "sms_text": "{{ sender_name }}: khong chia se mat khau."});
    let (_, v) = as_(&app, &phong_author, "/api/v1/templates", body.clone()).await;
    let tip = v["id"].as_i64().unwrap();
    let (_, v) = as_(&app, &phong_author, "/api/v1/templates", body).await;
    let unpublished = v["id"].as_i64().unwrap();
    let use_tpl = |tpl: i64, org: i64| json!({"org_id": org, "name": "Mẹo tuần 1", "template_id": tpl, "audience": {"org_id": org, "roles": ["staff"]}, "channels": ["sms"]});
    // Before publication the school cannot use the Phòng's template.
    let (s, v) = as_(&app, &teacher, "/api/v1/campaigns", use_tpl(tip, t.school)).await;
    assert_eq!(
        (s, v["error"]["details"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("template_id")),
        "{v}"
    );
    // Only an approver of the template's node (or above) publishes it.
    let publish = format!("/api/v1/templates/{tip}/publish");
    assert_eq!(
        as_(&app, &principal, &publish, json!({"topics": ["x"]}))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (s, v) = as_(
        &app,
        &phong_approver,
        &publish,
        json!({"topics": ["An toàn mạng", "mật khẩu"]}),
    )
    .await;
    assert_eq!(
        (s, v["published"]["topics"].clone()),
        (StatusCode::OK, json!(["an toàn mạng", "mật khẩu"])),
        "{v}"
    );
    // The school finds it by topic and uses it; its own approver approves audience and schedule.
    let (_, lib) = app
        .call_as(
            &teacher,
            Method::GET,
            "/api/v1/library?topic=an%20to%C3%A0n%20m%E1%BA%A1ng",
            None,
        )
        .await;
    let ids: Vec<i64> = lib
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![tip]);
    let (s, v) = as_(&app, &teacher, "/api/v1/campaigns", use_tpl(tip, t.school)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let c = v["id"].as_i64().unwrap();
    as_(
        &app,
        &teacher,
        &format!("/api/v1/campaigns/{c}/submit"),
        json!({}),
    )
    .await;
    let (s, v) = as_(
        &app,
        &principal,
        &format!("/api/v1/campaigns/{c}/approve"),
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["approval"]["snapshot"]["content"]["source"], "library",
        "{v}"
    );
    let (s, _) = as_(
        &app,
        &teacher,
        &format!("/api/v1/campaigns/{c}/start"),
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    app.wait_done(c).await;
    let sent = app.sink_lines("sms");
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].to_string().contains("khong chia se mat khau"),
        "{}",
        sent[0]
    );
    // Unpublished content stays the Phòng's; a school of another Phòng sees none of it.
    let (s, _) = as_(
        &app,
        &teacher,
        "/api/v1/campaigns",
        use_tpl(unpublished, t.school),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = as_(
        &app,
        &far_teacher,
        "/api/v1/campaigns",
        use_tpl(tip, far_school),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = app
        .call_as(
            &far_teacher,
            Method::GET,
            &format!("/api/v1/templates/{tip}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, lib) = app
        .call_as(&far_teacher, Method::GET, "/api/v1/library", None)
        .await;
    assert_eq!(lib, json!([]));
    app.stop().await;
}

#[tokio::test]
async fn the_audit_log_records_who_did_what_for_admins_of_the_node_and_above() {
    let app = spawn_app(|_, _| {}).await;
    let (t, c) = school_campaign(&app).await;
    let school_admin = user(&app, t.school, "admin.th1", &["admin"]).await;
    let phong_admin = user(&app, t.district, "admin.pgd", &["admin"]).await;
    app.start(c).await;
    app.wait_done(c).await;
    let (s, _) = app.get(&format!("/api/v1/campaigns/{c}/deliveries")).await;
    assert_eq!(s, StatusCode::OK);
    let person = app.contact(json!({"org_id": t.school, "role": "parent", "full_name": "Bà Tư Riêng", "phone": "0912000333"})).await;
    let (s, _) = app
        .call_as(
            &school_admin,
            Method::DELETE,
            &format!("/api/v1/contacts/{person}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // A Phòng-level action the school must not see.
    app.contact(json!({"org_id": t.district, "role": "staff", "full_name": "Chuyên viên", "phone": "0912000444"})).await;

    let (s, v) = app
        .call_as(&school_admin, Method::GET, "/api/v1/audit", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let entries = v["entries"].as_array().unwrap();
    let actions: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["username"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (action, who) in [
        ("campaign.create", "ops"),
        ("campaign.submit", "ops"),
        ("campaign.approve", "ops-approver"),
        ("campaign.start", "ops"),
        ("campaign.export_deliveries", "ops"),
        ("contact.erase", "admin.th1"),
    ] {
        assert!(
            actions.contains(&(action.to_string(), who.to_string())),
            "{action} by {who} missing: {actions:?}"
        );
    }
    assert!(
        entries
            .iter()
            .all(|e| e["org_id"].as_i64() != Some(t.district)),
        "the school sees the Phòng's entries"
    );
    assert!(
        !v.to_string().contains("Bà Tư") && !v.to_string().contains("0912000333"),
        "personal data in the audit log: {v}"
    );
    let (_, v) = app
        .call_as(&phong_admin, Method::GET, "/api/v1/audit", None)
        .await;
    let phong: Vec<i64> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["org_id"].as_i64())
        .collect();
    assert!(
        phong.contains(&t.district) && phong.contains(&t.school),
        "{v}"
    );
    // Not above: the school admin cannot read the Phòng's log.
    let (s, _) = app
        .call_as(
            &school_admin,
            Method::GET,
            &format!("/api/v1/audit?org_id={}", t.district),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn cli_bootstraps_users_and_tokens() {
    let app = spawn_app_with(|_, _| {}, false).await;
    let t = tree(&app).await;
    let out = app
        .loa_cli(&[
            "user",
            "create",
            "--username",
            "Hieu.Truong",
            "--name",
            "Trần Minh",
            "--org",
            "TH1",
            "--roles",
            "approver,viewer",
        ])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = app
        .loa_cli(&["token", "create", "--username", "hieu.truong"])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(token.starts_with("loa_"), "{token}");
    let (s, v) = app.call_as(&token, Method::GET, "/api/v1/me", None).await;
    let me = v["user_id"].as_i64().unwrap();
    assert_eq!(
        (s, v["org_id"].as_i64(), v["roles"].clone()),
        (
            StatusCode::OK,
            Some(t.school),
            json!(["approver", "viewer"])
        ),
        "{v}"
    );
    // A user makes a second token for themself and revokes it; it stops working at once.
    let (s, v) = app
        .call_as(
            &token,
            Method::POST,
            &format!("/api/v1/users/{me}/tokens"),
            Some(json!({"name": "điện thoại"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (second, second_id) = (
        v["token"].as_str().unwrap().to_string(),
        v["id"].as_i64().unwrap(),
    );
    assert_eq!(
        app.call_as(&second, Method::GET, "/api/v1/me", None)
            .await
            .0,
        StatusCode::OK
    );
    let (s, v) = app
        .call_as(
            &token,
            Method::DELETE,
            &format!("/api/v1/users/{me}/tokens/{second_id}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        app.call_as(&second, Method::GET, "/api/v1/me", None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.call_as(&token, Method::GET, "/api/v1/me", None).await.0,
        StatusCode::OK
    );
    // Bad input: unknown role, unknown node, taken username; each a clear message and exit 1.
    for (args, says) in [
        (
            vec![
                "--username",
                "x1",
                "--name",
                "X",
                "--org",
                "TH1",
                "--roles",
                "boss",
            ],
            "vai trò không hợp lệ",
        ),
        (
            vec![
                "--username",
                "x2",
                "--name",
                "X",
                "--org",
                "NOPE",
                "--roles",
                "viewer",
            ],
            "không có đơn vị mã NOPE",
        ),
        (
            vec![
                "--username",
                "hieu.truong",
                "--name",
                "X",
                "--org",
                "TH1",
                "--roles",
                "viewer",
            ],
            "đã có người dùng",
        ),
    ] {
        let mut all = vec!["user", "create"];
        all.extend(args);
        let out = app.loa_cli(&all).await;
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(says),
            "{all:?}: {err}"
        );
    }
    app.stop().await;
}
