//! The HTTP API end to end on sinks: errors name the field, campaigns reach each person once on the
//! right channel, opt-outs and unsubscribe links work.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn malformed_requests_get_json_errors() {
    let app = spawn_app(|_, _| {}).await;
    let r = app
        .http
        .post(format!("{}/api/v1/orgs", app.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "bad_request");
    assert!(v["error"]["message"].as_str().unwrap().len() > 5);

    let (s, v) = app
        .post(
            "/api/v1/orgs",
            json!({"kind": "planet", "code": "x", "name": "y"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("kind"),
        "{v}"
    );

    let (s, v) = app.get("/api/v1/orgs/abc").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request"))
    );
    let (s, v) = app.get("/api/v1/campaigns/999").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (s, _) = app.get("/api/v1/nothing-here").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn bad_contacts_and_tree_shapes_are_refused_with_the_field_named() {
    let app = spawn_app(|_, _| {}).await;
    let t = tree(&app).await;
    let (s, v) = app.post("/api/v1/contacts", json!({"org_id": t.school, "role": "parent", "full_name": "Lê Văn Tám", "phone": "0912 34", "email": "nope"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = v["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["phone", "email"], "{v}");

    let (s, v) = app
        .post(
            "/api/v1/contacts",
            json!({"org_id": 4242, "role": "parent", "full_name": "Lê Văn Tám"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["details"][0]["field"], "org_id");

    // Phones are stored in E.164 whatever form the school typed.
    let id = app.contact(json!({"org_id": t.school, "role": "parent", "full_name": "Lê Văn Tám", "phone": "01672345678"})).await;
    let (_, c) = app.get(&format!("/api/v1/contacts/{id}")).await;
    assert_eq!(c["phone"], "+84372345678");

    let (s, _) = app
        .post(
            "/api/v1/orgs",
            json!({"parent_id": t.district, "kind": "class", "code": "C", "name": "6A"}),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a class hangs under a school only"
    );
    let (s, _) = app
        .post(
            "/api/v1/orgs",
            json!({"parent_id": t.district, "kind": "school", "code": "TH1", "name": "dup"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    app.stop().await;
}

#[tokio::test]
async fn templates_with_bad_syntax_or_unknown_variables_are_refused() {
    let app = spawn_app(|_, _| {}).await;
    let t = tree(&app).await;
    let (s, v) = app
        .post(
            "/api/v1/templates",
            json!({"org_id": t.school, "name": "x", "sms_text": "{{ phone_number }}"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["details"][0]["field"], "sms_text");
    assert!(
        v["error"]["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("phone_number")
    );
    let (s, v) = app
        .post(
            "/api/v1/templates",
            json!({"org_id": t.school, "name": "x", "zalo_text": "{% if %}"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["details"][0]["field"], "zalo_text");
    app.stop().await;
}

#[tokio::test]
async fn campaign_creation_checks_channels_length_and_scope() {
    let app = spawn_app(|_, _| {}).await;
    let t = tree(&app).await;
    let other = app
        .org(Some(t.district), "school", "TH2", "Trường TH Khác")
        .await;
    let tpl = template(&app, t.school).await;
    let body = |org, audience_org, channels: &[&str]| {
        json!({"org_id": org, "name": "T", "template_id": tpl,
        "audience": {"org_id": audience_org, "roles": ["parent"]}, "channels": channels})
    };

    let (s, v) = app
        .post("/api/v1/campaigns", body(t.school, other, &["sms"]))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        v["error"]["details"][0]["field"], "audience.org_id",
        "a school cannot message another school"
    );

    let (s, v) = app
        .post(
            "/api/v1/campaigns",
            body(t.school, t.school, &["messenger"]),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("messenger"),
        "{v}"
    );

    let long = app
        .create(
            "/api/v1/templates",
            json!({"org_id": t.school, "name": "long", "sms_text": "Thông báo dài ".repeat(70)}),
        )
        .await;
    let (s, v) = app
        .post(
            "/api/v1/campaigns",
            json!({"org_id": t.school, "name": "T", "template_id": long,
        "audience": {"org_id": t.school, "roles": ["parent"]}, "channels": ["sms"]}),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the sink allows 5 SMS parts: {v}"
    );
    assert_eq!(v["error"]["details"][0]["field"], "sms_text");
    app.stop().await;
}

#[tokio::test]
async fn a_parent_with_two_children_gets_one_message_naming_both() {
    let app = spawn_app(|_, _| {}).await;
    let t = tree(&app).await;
    let an = app.contact(json!({"org_id": t.class_a, "role": "student", "full_name": "Trần Minh An", "student_code": "A1"})).await;
    let binh = app.contact(json!({"org_id": t.class_b, "role": "student", "full_name": "Trần Thu Bình", "student_code": "B1"})).await;
    let mother = app.contact(json!({"org_id": t.school, "role": "parent", "full_name": "Nguyễn Thị Lan", "phone": "0912345678"})).await;
    app.link(mother, an).await;
    app.link(mother, binh).await;
    let tpl = template(&app, t.school).await;
    let c = campaign(&app, t.school, tpl, &["parent"], &["sms"]).await;
    app.start(c).await;
    let p = app.wait_done(c).await;
    assert_eq!(p["progress"]["total"], 1, "{p}");
    let lines = app.sink_lines("sms");
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["to"], "+84912345678");
    let text = lines[0]["text"].as_str().unwrap();
    assert!(
        text.contains("Tran Minh An va Tran Thu Binh"),
        "unaccented by the SMS sink: {text}"
    );
    app.stop().await;
}

#[tokio::test]
async fn channel_order_fallback_opt_out_and_no_address() {
    // Every Zalo id is refused by the sink: Zalo users fall back to SMS.
    let app = spawn_app(|cfg, dir| {
        cfg.use_sinks(&dir.join("outbox"), 1000);
    })
    .await;
    let t = tree(&app).await;
    let mut people = Vec::new();
    let specs = [
        (
            "Zalo rồi SMS",
            json!({"zalo_user_id": "1234567890123456789", "phone": "0912000001"}),
        ),
        ("Chỉ email", json!({"email": "chi.email@example.vn"})),
        (
            "Từ chối hết",
            json!({"phone": "0912000003", "email": "tu.choi@example.vn"}),
        ),
        ("Không địa chỉ", json!({})),
        ("Zalo, không gì khác", json!({"zalo_user_id": "999"})),
    ];
    for (i, (name, addr)) in specs.iter().enumerate() {
        let s = app.contact(json!({"org_id": t.class_a, "role": "student", "full_name": format!("Con {i}"), "student_code": format!("S{i}")})).await;
        let mut body = json!({"org_id": t.school, "role": "parent", "full_name": name});
        body.as_object_mut()
            .unwrap()
            .extend(addr.as_object().unwrap().clone());
        let p = app.contact(body).await;
        app.link(p, s).await;
        people.push(p);
    }
    for ch in ["sms", "email"] {
        let (s, _) = app
            .post(
                &format!("/api/v1/contacts/{}/opt-outs", people[2]),
                json!({"channel": ch}),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
    }
    let tpl = template(&app, t.school).await;
    let c = campaign(&app, t.school, tpl, &["parent"], &["zalo", "sms", "email"]).await;
    app.start(c).await;
    app.wait_done(c).await;
    let ds = app.deliveries(c).await;
    let by = |name: &str| ds.iter().find(|d| d["full_name"] == name).unwrap().clone();
    let d = by("Zalo rồi SMS");
    assert_eq!(
        (d["state"].as_str(), d["channel"].as_str()),
        (Some("delivered"), Some("sms")),
        "{d}"
    );
    assert!(
        d["reason"].as_str().unwrap().starts_with("zalo: "),
        "the path is kept: {d}"
    );
    assert_eq!(by("Chỉ email")["channel"], "email");
    let d = by("Từ chối hết");
    assert_eq!(
        (d["state"].as_str(), d["reason_code"].as_str()),
        (Some("skipped"), Some("opted_out"))
    );
    let d = by("Không địa chỉ");
    assert_eq!(
        (d["state"].as_str(), d["reason_code"].as_str()),
        (Some("failed"), Some("no_address"))
    );
    let d = by("Zalo, không gì khác");
    assert_eq!(
        (d["state"].as_str(), d["reason_code"].as_str()),
        (Some("failed"), Some("provider_rejected")),
        "{d}"
    );
    assert!(app.sink_lines("zalo").is_empty());

    let (_, p) = app.get(&format!("/api/v1/campaigns/{c}/progress")).await;
    assert_eq!(p["progress"]["by_channel"]["sms"]["delivered"], 1, "{p}");
    let (_, r) = app.get(&format!("/api/v1/campaigns/{c}/report")).await;
    assert_eq!(r["by_org"][0]["targeted"], 5, "{r}");
    assert_eq!(r["by_org"][0]["skipped"], 1, "{r}");
    app.stop().await;
}

#[tokio::test]
async fn audience_by_class_and_role() {
    let app = spawn_app(|_, _| {}).await;
    let t = tree(&app).await;
    for (i, class) in [t.class_a, t.class_b].into_iter().enumerate() {
        let s = app.contact(json!({"org_id": class, "role": "student", "full_name": format!("HS {i}"), "student_code": format!("C{i}"), "phone": format!("0913{i:06}")})).await;
        let p = app.contact(json!({"org_id": t.school, "role": "parent", "full_name": format!("PH {i}"), "phone": format!("0914{i:06}")})).await;
        app.link(p, s).await;
    }
    app.contact(
        json!({"org_id": t.school, "role": "staff", "full_name": "Cô Giáo", "phone": "0915000000"}),
    )
    .await;
    let tpl = template(&app, t.school).await;
    let c = app.create("/api/v1/campaigns", json!({"org_id": t.school, "name": "4B", "template_id": tpl,
        "audience": {"org_id": t.school, "roles": ["parent", "student"], "class_ids": [t.class_b]}, "channels": ["sms"]})).await;
    app.start(c).await;
    app.wait_done(c).await;
    let mut names: Vec<String> = app
        .deliveries(c)
        .await
        .iter()
        .map(|d| d["full_name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["HS 1", "PH 1"]);

    // A Phòng's directive to staff reaches the school's staff, not parents.
    let dtpl = template(&app, t.district).await;
    let d = campaign(&app, t.district, dtpl, &["staff"], &["sms"]).await;
    app.start(d).await;
    app.wait_done(d).await;
    let ds = app.deliveries(d).await;
    assert_eq!(ds.len(), 1);
    assert_eq!(ds[0]["full_name"], "Cô Giáo");
    assert_eq!(
        ds[0]["to"], "+8491****000",
        "addresses are masked in listings"
    );
    app.stop().await;
}

#[tokio::test]
async fn cancel_stops_unsent_deliveries_and_start_twice_is_refused() {
    let app = spawn_app_with(|_, _| {}, false).await;
    let t = tree(&app).await;
    parents_with_children(&app, &t, 5).await;
    let tpl = template(&app, t.school).await;
    let c = campaign(&app, t.school, tpl, &["parent"], &["sms"]).await;
    app.start(c).await;
    let (s, _) = app
        .post(&format!("/api/v1/campaigns/{c}/start"), json!({}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    // No dispatcher runs here: wait until fan-out queued them, then cancel.
    wait_for(std::time::Duration::from_secs(10), || async {
        let (_, p) = app.get(&format!("/api/v1/campaigns/{c}/progress")).await;
        (p["progress"]["by_state"]["queued"] == 5).then_some(())
    })
    .await
    .expect("fanned out");
    let (s, v) = app
        .post(&format!("/api/v1/campaigns/{c}/cancel"), json!({}))
        .await;
    assert_eq!(
        (s, v["deliveries_cancelled"].as_i64()),
        (StatusCode::OK, Some(5)),
        "{v}"
    );
    let (_, p) = app.get(&format!("/api/v1/campaigns/{c}/progress")).await;
    assert_eq!(
        (
            p["state"].as_str(),
            p["progress"]["by_state"]["cancelled"].as_i64()
        ),
        (Some("cancelled"), Some(5))
    );
    let (s, _) = app
        .post(&format!("/api/v1/campaigns/{c}/cancel"), json!({}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(
        app.state
            .store
            .claim(10, loa::clock::now_ms(), loa::clock::now_ms() + 1000, &[])
            .await
            .unwrap()
            .is_empty()
    );
    app.stop().await;
}

#[tokio::test]
async fn unsubscribe_link_shows_a_page_and_one_click_post_opts_out() {
    let app = spawn_app(|_, _| {}).await;
    let t = tree(&app).await;
    let parents = parents_with_children(&app, &t, 1).await;
    let tpl = template(&app, t.school).await;
    let c = campaign(&app, t.school, tpl, &["parent"], &["email"]).await;
    app.start(c).await;
    app.wait_done(c).await;
    let eml = std::fs::read_dir(app.outbox().join("email"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let raw = std::fs::read(&eml).unwrap();
    let msg = mail_parser::MessageParser::default().parse(&raw).unwrap();
    let header = msg
        .header_raw("List-Unsubscribe")
        .unwrap()
        .trim()
        .to_string();
    let url = header
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .to_string();
    assert!(url.starts_with(&app.base), "{url}");
    assert_eq!(
        msg.header_raw("List-Unsubscribe-Post").unwrap().trim(),
        "List-Unsubscribe=One-Click"
    );

    let page = app.http.get(&url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("Xác nhận huỷ nhận tin"));
    let (_, before) = app.get(&format!("/api/v1/contacts/{}", parents[0])).await;
    assert_eq!(
        before["opted_out"],
        json!([]),
        "GET alone must not unsubscribe"
    );

    // The link stops email only: its signature covers the channel, so editing `c=` reaches nothing.
    assert!(url.ends_with("?c=email"), "{url}");
    for other in ["sms", "zalo", "messenger"] {
        let widened = url.replace("?c=email", &format!("?c={other}"));
        let r = app.http.post(&widened).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "c={other}");
        let r = app.http.get(&widened).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "c={other}");
    }
    let (_, v) = app.get(&format!("/api/v1/contacts/{}", parents[0])).await;
    assert_eq!(v["opted_out"], json!([]), "an email link stopped {v}");

    let r = app
        .http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (_, after) = app.get(&format!("/api/v1/contacts/{}", parents[0])).await;
    assert_eq!(after["opted_out"], json!(["email"]));
    let bad = app
        .http
        .post(format!("{}/u/not-a-token?c=email", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn guardian_links_check_both_ends() {
    let app = spawn_app(|_, _| {}).await;
    let t = tree(&app).await;
    let student = app.contact(json!({"org_id": t.class_a, "role": "student", "full_name": "Con", "student_code": "X1"})).await;
    let parent = app
        .contact(
            json!({"org_id": t.school, "role": "parent", "full_name": "Mẹ", "phone": "0912345678"}),
        )
        .await;
    let (s, v) = app
        .post(
            "/api/v1/guardian-links",
            json!({"parent_id": 999, "student_id": student}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["details"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("parent_id")),
        "{v}"
    );
    let (s, v) = app
        .post(
            "/api/v1/guardian-links",
            json!({"parent_id": parent, "student_id": parent}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["details"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("student_id")),
        "{v}"
    );
    app.link(parent, student).await;
    app.link(parent, student).await; // idempotent
    app.stop().await;
}

/// A user at `org` with `roles`, and their token.
async fn user_token(app: &TestApp, org: i64, username: &str, roles: &[&str]) -> String {
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

fn ids(v: &Value) -> Vec<i64> {
    v["contacts"]
        .as_array()
        .unwrap_or_else(|| panic!("no contacts in {v}"))
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn contacts_are_listed_filtered_paged_and_masked_for_non_admins() {
    let app = spawn_app_with(|_, _| {}, false).await;
    let t = tree(&app).await;
    let parents = parents_with_children(&app, &t, 3).await;
    let staff = app
        .contact(json!({"org_id": t.school, "role": "staff", "full_name": "Cô Đặng Thị Ánh", "email": "anh.dang@example.vn"}))
        .await;
    let other = app
        .org(Some(t.district), "school", "TH2", "Trường bên")
        .await;
    let stranger = app
        .contact(json!({"org_id": other, "role": "parent", "full_name": "Người Trường Bên", "phone": "0987000111"}))
        .await;

    let list = |q: &str| format!("/api/v1/contacts?org_id={}{q}", t.school);
    let (s, v) = app.get(&list("&role=parent")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(ids(&v), parents, "{v}");
    assert_eq!(
        v["contacts"][0]["phone"], "+84912000000",
        "admins read in full"
    );
    assert_eq!(
        ids(&app.get(&list("&has=email&role=staff")).await.1),
        vec![staff]
    );
    assert_eq!(
        ids(&app.get(&list("&has=sms&role=staff")).await.1),
        Vec::<i64>::new()
    );
    // Accents, case and spacing do not matter.
    assert_eq!(
        ids(&app.get(&list("&q=dang%20thi%20ANH")).await.1),
        vec![staff]
    );
    assert_eq!(
        ids(&app.get(&list("&q=%C4%90%E1%BA%B7ng")).await.1),
        vec![staff]
    );
    // A class: its students and their parents.
    let (_, v) = app
        .get(&format!(
            "/api/v1/contacts?class_id={}&role=parent",
            t.class_a
        ))
        .await;
    assert_eq!(ids(&v), parents, "{v}");
    let (_, v) = app
        .get(&format!("/api/v1/contacts?class_id={}", t.class_b))
        .await;
    assert_eq!(ids(&v), Vec::<i64>::new(), "{v}");
    // Pages.
    let (_, p1) = app.get(&list("&role=parent&limit=2")).await;
    assert_eq!(ids(&p1), parents[..2].to_vec(), "{p1}");
    let after = p1["next_after"].as_i64().expect("a next page");
    let (_, p2) = app
        .get(&list(&format!("&role=parent&limit=2&after={after}")))
        .await;
    assert_eq!(ids(&p2), parents[2..].to_vec(), "{p2}");
    assert_eq!(p2["next_after"], Value::Null);
    for bad in ["&limit=0", "&limit=100000", "&role=boss", "&has=fax"] {
        let (s, v) = app.get(&list(bad)).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed")),
            "{bad}: {v}"
        );
    }

    // A viewer of the school: only the school's subtree, addresses masked.
    let viewer = user_token(&app, t.school, "xem", &["viewer"]).await;
    let (s, v) = app
        .call_as(&viewer, Method::GET, "/api/v1/contacts", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let seen = ids(&v);
    assert!(seen.contains(&staff) && !seen.contains(&stranger), "{v}");
    let text = v.to_string();
    assert!(
        !text.contains("+84912000000") && !text.contains("anh.dang@"),
        "{v}"
    );
    assert!(text.contains("+8491****000"), "{v}");
    let (s, v) = app
        .call_as(
            &viewer,
            Method::GET,
            &format!("/api/v1/contacts?org_id={other}"),
            None,
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found")),
        "{v}"
    );
    app.stop().await;
}

#[tokio::test]
async fn every_error_is_the_json_body_in_vietnamese() {
    let app = spawn_app_with(|_, _| {}, false).await;
    let t = tree(&app).await;
    let vietnamese = |v: &Value| {
        let m = v["error"]["message"].as_str().unwrap_or("");
        assert!(!m.is_empty() && !m.is_ascii(), "not Vietnamese: {v}");
    };
    // 405 and unknown routes, inside the API and outside it.
    for (method, path, status, code) in [
        (
            Method::DELETE,
            "/api/v1/contacts".to_string(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            Method::PUT,
            format!("/api/v1/orgs/{}/policy", t.school),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            Method::POST,
            "/healthz".to_string(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            Method::GET,
            "/api/v1/no-such-thing".to_string(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::GET,
            "/no-such-page".to_string(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ] {
        let (s, v) = app.call(method.clone(), &path, None).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (status, Some(code)),
            "{method} {path}: {v}"
        );
        vietnamese(&v);
    }
    // 401, 404 and 409 speak Vietnamese too; the codes stay English.
    let (s, v) = app.call_as("", Method::GET, "/api/v1/contacts", None).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthenticated"))
    );
    vietnamese(&v);
    let (s, v) = app
        .call_as("loa_nope", Method::GET, "/api/v1/contacts", None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    vietnamese(&v);
    let (s, v) = app.get("/api/v1/contacts/999999").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    vietnamese(&v);
    let (s, v) = app
        .post(
            "/api/v1/orgs",
            json!({"parent_id": t.district, "kind": "school", "code": "TH1", "name": "Trùng mã"}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"))
    );
    vietnamese(&v);
    let (s, v) = app
        .post(&format!("/api/v1/campaigns/{}/approve", 999_999), json!({}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "the operator is no approver: {v}");
    vietnamese(&v);
    let (s, v) = app
        .post(
            "/api/v1/orgs",
            json!({"kind": "planet", "code": "x", "name": "y"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["code"], "bad_request");
    assert!(v["error"]["details"]["reason"].is_string(), "{v}");
    vietnamese(&v);
    let r = app
        .http
        .post(format!("{}/api/v1/orgs", app.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    vietnamese(&r.json::<Value>().await.unwrap());
    app.stop().await;
}
