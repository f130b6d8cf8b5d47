//! Helpers for the import tests: upload a file, read back who is linked to whom, reach parents.

use reqwest::StatusCode;
use serde_json::Value;

use super::*;

/// Uploads `body` to `POST /contacts/import?org_id=<org><query>` (as multipart or raw) and returns
/// the status and the JSON reply (Null when the reply is not JSON).
pub async fn import(
    app: &TestApp,
    org: i64,
    query: &str,
    body: Vec<u8>,
    multipart: bool,
) -> (StatusCode, Value) {
    let url = format!("{}/api/v1/contacts/import?org_id={org}{query}", app.base);
    let req = if multipart {
        let part = reqwest::multipart::Part::bytes(body).file_name("danh-sach.csv");
        app.http
            .post(url)
            .multipart(reqwest::multipart::Form::new().part("file", part))
    } else {
        app.http.post(url).body(body)
    };
    let r = req.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The same upload, returning the raw reply (for `format=xlsx`).
pub async fn import_raw(
    app: &TestApp,
    org: i64,
    query: &str,
    body: Vec<u8>,
) -> (StatusCode, String, Vec<u8>) {
    let url = format!("{}/api/v1/contacts/import?org_id={org}{query}", app.base);
    let r = app.http.post(url).body(body).send().await.unwrap();
    let status = r.status();
    let ctype = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, ctype, r.bytes().await.unwrap().to_vec())
}

/// Runs an SMS campaign to the school's parents and returns the numbers the SMS sink saw.
pub async fn parent_phones(app: &TestApp, school: i64) -> Vec<String> {
    let tpl = template(app, school).await;
    let c = campaign(app, school, tpl, &["parent"], &["sms"]).await;
    app.start(c).await;
    app.wait_done(c).await;
    let mut phones: Vec<String> = app
        .sink_lines("sms")
        .iter()
        .map(|l| l["to"].as_str().unwrap().to_string())
        .collect();
    phones.sort();
    phones
}

/// Every guardian link as (student, class, parent, phone, email, relation), by student and parent name.
pub type Link = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);
pub async fn links(app: &TestApp) -> Vec<Link> {
    let pool = app.raw_db().await;
    let rows: Vec<Link> = sqlx::query_as(
        "SELECT s.full_name, o.name, p.full_name, p.phone, p.email, g.relation FROM guardian_links g \
         JOIN contacts s ON s.id = g.student_id JOIN contacts p ON p.id = g.parent_id \
         JOIN orgs o ON o.id = s.org_id ORDER BY s.full_name, p.full_name",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    rows
}

pub fn l(s: &str, c: &str, p: &str, phone: Option<&str>, email: Option<&str>, rel: &str) -> Link {
    (
        s.into(),
        c.into(),
        p.into(),
        phone.map(Into::into),
        email.map(Into::into),
        Some(rel.into()).filter(|r: &String| !r.is_empty()),
    )
}

/// (line, cell, code) of each entry of a report list.
pub fn cells(r: &Value, k: &str) -> Vec<(u64, String, String)> {
    r[k].as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["line"].as_u64().unwrap(),
                e["cell"].as_str().unwrap_or("").into(),
                e["code"].as_str().unwrap().into(),
            )
        })
        .collect()
}
