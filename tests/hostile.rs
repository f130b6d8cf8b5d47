//! Hostile input through the API (issue 15, points 1-3): template bombs, spreadsheets that lie about
//! their size, and a template that only fails at send time. Each is refused or fails alone with a
//! reason, and the server still answers afterwards.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Whether the daemon still serves: any bounded route answering 200.
async fn still_answers(app: &TestApp) {
    let (s, v) = app.get("/api/v1/orgs").await;
    assert_eq!(s, StatusCode::OK, "the server no longer answers: {v}");
}

async fn new_template(app: &TestApp, org: i64, field: &str, body: &str) -> (StatusCode, Value) {
    let mut t = json!({"org_id": org, "name": "Thử"});
    if field.starts_with("email_") {
        t["email_subject"] = json!("Thư");
    }
    t[field] = json!(body);
    app.post("/api/v1/templates", t).await
}

#[tokio::test]
async fn template_bombs_are_refused_and_the_server_keeps_answering() {
    let app = spawn_app(|_, _| {}).await;
    let t = tree(&app).await;
    let nested_for = {
        let mut s = String::new();
        for i in 0..25 {
            s.push_str(&format!("{{% for x{i} in students %}}"));
        }
        s.push('x');
        s.push_str(&"{% endfor %}".repeat(25));
        s
    };
    // Inside the recursion limit and writing nothing: 8^12 steps for the worst-case parent, stopped
    // by the fuel.
    let twelve_for = {
        let mut s = String::new();
        for i in 0..12 {
            s.push_str(&format!("{{% for x{i} in students %}}"));
        }
        s.push_str(&"{% endfor %}".repeat(12));
        s
    };
    let doubling = {
        let mut s = String::from("{% set a = 'xxxxxxxxxx' %}");
        s.push_str(&"{% set a = a ~ a %}".repeat(40));
        s.push_str("{{ a }}");
        s
    };
    let bombs: Vec<(&str, String)> = vec![
        (
            "sms_text",
            "{{ student_names|indent(9223372036854775807) }}".into(),
        ),
        ("sms_text", "{{ students|batch(9223372036854775807) }}".into()),
        ("sms_text", "{{ students|slice(9223372036854775807) }}".into()),
        ("sms_text", "{{ '%999999999s'|format('x') }}".into()),
        ("sms_text", "{{ 'x' * 100000000 }}".into()),
        ("zalo_text", nested_for.clone()),
        ("messenger_text", twelve_for),
        ("zalo_text", doubling),
        (
            "email_text",
            "{% macro m(n) %}{{ m(n) }}{% endmacro %}{{ m(1) }}".into(),
        ),
        ("email_text", "{% include 'email_text' %}".into()),
        ("email_text", "{{ range(100000)|join('x') }}".into()),
        (
            "email_html",
            format!(
                "{{{{ student_names{} }}}}",
                "|replace('', '0123456789012345678901234567890123456789')".repeat(6)
            ),
        ),
        // Only the heavier branch explodes: the worst-case sample (many children) reaches it.
        (
            "sms_text",
            format!("{{% if students|length > 2 %}}{nested_for}{{% endif %}}Chào"),
        ),
        // Output far beyond any SMS: loops over the children multiply it.
        (
            "sms_text",
            "{% for a in students %}{% for b in students %}{% for c in students %}{{ student_names }}{% endfor %}{% endfor %}{% endfor %}".into(),
        ),
        ("sms_text", "x".repeat(100_000)),
    ];
    for (field, body) in &bombs {
        let started = std::time::Instant::now();
        let (s, v) = new_template(&app, t.school, field, body).await;
        assert_eq!(
            s,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}: {} -> {v}",
            &body[..body.len().min(80)]
        );
        let msg = v["error"]["details"][0]["message"].as_str().unwrap_or("");
        assert!(!msg.is_empty(), "{v}");
        eprintln!(
            "refused in {:?}: {} ... -> {msg}",
            started.elapsed(),
            &body[..body.len().min(50)]
        );
        still_answers(&app).await;
    }
    // What messages really use still goes in.
    let (s, v) = new_template(
        &app,
        t.school,
        "sms_text",
        "PH em {% for s in students %}{{ s|upper }}{% if not loop.last %}, {% endif %}{% endfor %} ({{ class_name }}): {{ campaign_name|replace('Tuần', 'T') }}",
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    app.stop().await;
}

#[tokio::test]
async fn a_template_that_fails_at_send_time_fails_that_delivery_only() {
    let app = spawn_app(|_, _| {}).await;
    let t = tree(&app).await;
    // Passes creation (8 long-named children render to about 6 kB of the Zalo text's 8 kB), but a
    // parent with 24 children renders to about 54 kB.
    let body =
        "{% for a in students %}{% for b in students %}{{ a }}{{ b }}{% endfor %}{% endfor %}";
    let (s, v) = app
        .post(
            "/api/v1/templates",
            json!({"org_id": t.school, "name": "Thử", "zalo_text": body}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let tpl = v["id"].as_i64().unwrap();
    let big = app.contact(json!({"org_id": t.school, "role": "parent", "full_name": "Phụ Huynh Đông Con", "zalo_user_id": "8000000000000000001"})).await;
    for i in 0..24 {
        let s = app.contact(json!({"org_id": t.class_a, "role": "student", "full_name": format!("Nguyễn Hoàng Bảo Ngọc Thiên Hương Phương Thảo {i}"), "student_code": format!("DC{i:03}")})).await;
        app.link(big, s).await;
    }
    let mut others = Vec::new();
    for i in 0..3 {
        let s = app.contact(json!({"org_id": t.class_a, "role": "student", "full_name": format!("Học Sinh {i}"), "student_code": format!("HS{i:03}")})).await;
        let p = app.contact(json!({"org_id": t.school, "role": "parent", "full_name": format!("Phụ Huynh {i}"), "zalo_user_id": format!("800000000000000010{i}")})).await;
        app.link(p, s).await;
        others.push(p);
    }
    let c = campaign(&app, t.school, tpl, &["parent"], &["zalo"]).await;
    app.start(c).await;
    app.wait_done(c).await;
    let ds = app.deliveries(c).await;
    let of = |id: i64| {
        ds.iter()
            .find(|d| d["contact_id"].as_i64() == Some(id))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let d = of(big);
    assert_eq!(d["state"], "failed", "{d}");
    assert_eq!(d["reason_code"], "render_failed", "{d}");
    for p in others {
        let st = of(p)["state"].clone();
        assert!(st == "sent" || st == "delivered", "{}", of(p));
    }
    still_answers(&app).await;
    app.stop().await;
}

async fn import(app: &TestApp, org: i64, body: Vec<u8>) -> (StatusCode, Value) {
    let r = app
        .http
        .post(format!("{}/api/v1/contacts/import?org_id={org}", app.base))
        .body(body)
        .send()
        .await
        .unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn hostile_spreadsheets_are_refused_by_name_and_the_server_keeps_answering() {
    let app = spawn_app(|_, _| {}).await;
    let t = tree(&app).await;
    let header = format!(
        r#"<row r="1">{}{}{}</row>"#,
        xlsx::inline("A1", "Họ tên học sinh"),
        xlsx::inline("B1", "Lớp"),
        xlsx::inline("C1", "SĐT phụ huynh")
    );
    // A 1 kB file whose only cells are A1 and XFD4294967295: the grid it declares has 10^13 cells.
    let far = xlsx::build(
        "DS",
        Some("A1:XFD4294967295"),
        &format!(
            r#"<row r="1">{}</row><row r="4294967295">{}</row>"#,
            xlsx::inline("A1", "x"),
            xlsx::inline("XFD4294967295", "y")
        ),
        None,
    );
    assert!(far.len() < 2048, "{}", far.len());
    // Shared strings that inflate to 200 MB from a few hundred kB.
    let mut bomb = b"<?xml version=\"1.0\"?><sst xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><si><t>".to_vec();
    bomb.extend(std::iter::repeat_n(b'a', 200 * 1024 * 1024));
    bomb.extend(b"</t></si></sst>");
    let bomb = xlsx::build(
        "DS",
        Some("A1:A1"),
        r#"<row r="1"><c r="A1" t="s"><v>0</v></c></row>"#,
        Some(&bomb),
    );
    let wide = xlsx::build(
        "DS",
        Some("A1:A1"),
        &format!(
            "{header}<row r=\"2\">{}{}</row>",
            xlsx::inline("A2", "An"),
            xlsx::inline("HZ2", "x")
        ),
        None,
    );
    // Rows listed out of order: refused rather than held whole to sort them.
    let shuffled = xlsx::build(
        "DS",
        None,
        &format!(
            "{header}<row r=\"3\">{}</row><row r=\"2\">{}</row>",
            xlsx::inline("A3", "Bình"),
            xlsx::inline("A2", "An")
        ),
        None,
    );
    let long_cell = format!(
        "Họ tên học sinh,Lớp,SĐT phụ huynh\n{},1A,0912345678\n",
        "A".repeat(5_000)
    );
    let many_columns = format!("Họ tên học sinh,Lớp{}\nAn,1A\n", ",x".repeat(300));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("declared 10^13 cells", far, "4294967295"),
        ("zip bomb", bomb, "MB"),
        ("column HZ", wide, "HZ2"),
        ("rows out of order", shuffled, "dòng 2 đứng sau dòng 3"),
        ("5,000-character cell", long_cell.into_bytes(), "A2"),
        ("300 columns", many_columns.into_bytes(), "200"),
    ];
    for (what, file, names) in cases {
        let (s, v) = import(&app, t.school, file).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {v}");
        let msg = v["error"]["details"][0]["message"].as_str().unwrap_or("");
        assert!(msg.contains(names), "{what}: the reason names {names}: {v}");
        eprintln!("{what}: {msg}");
        still_answers(&app).await;
    }

    // Cells that look like formulas are kept as the text they are, and a formula cell gives its
    // value, never its formula.
    let ok = xlsx::build(
        "DS",
        Some("A1:D3"),
        &format!(
            r#"<row r="1">{}{}{}{}</row><row r="2">{}{}{}{}</row><row r="3">{}{}<c r="C3"><f>HYPERLINK("http://x")</f><v>0912000002</v></c>{}</row>"#,
            xlsx::inline("A1", "Họ tên học sinh"),
            xlsx::inline("B1", "Lớp"),
            xlsx::inline("C1", "SĐT phụ huynh"),
            xlsx::inline("D1", "Họ tên phụ huynh"),
            xlsx::inline("A2", "=HYPERLINK(&quot;http://x&quot;,&quot;An&quot;)"),
            xlsx::inline("B2", "1A"),
            xlsx::inline("C2", "0912000001"),
            xlsx::inline("D2", "+Trần Văn Ba"),
            xlsx::inline("A3", "@Bình"),
            xlsx::inline("B3", "1A"),
            xlsx::inline("D3", "-Lê Thị Tư"),
        ),
        None,
    );
    let (s, v) = import(&app, t.school, ok).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["imported"], 2, "{v}");
    // The parents' messages name the children exactly as the cells held them.
    let tpl = template(&app, t.school).await;
    let c = campaign(&app, t.school, tpl, &["parent"], &["sms"]).await;
    app.start(c).await;
    app.wait_done(c).await;
    let mut texts: Vec<(String, String)> = app
        .sink_lines("sms")
        .iter()
        .map(|l| {
            (
                l["to"].as_str().unwrap_or("").to_string(),
                l["text"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    texts.sort();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert_eq!(texts[0].0, "+84912000001");
    assert!(
        texts[0].1.contains("=HYPERLINK(\"http://x\",\"An\")"),
        "{texts:?}"
    );
    assert_eq!(
        texts[1].0, "+84912000002",
        "the formula's value, not its text"
    );
    // The SMS route strips diacritics: "@Bình" goes out as "@Binh".
    assert!(texts[1].1.contains("em @Binh:"), "{texts:?}");
    still_answers(&app).await;
    app.stop().await;
}
