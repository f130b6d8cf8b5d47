//! `loa store copy`: a district's SQLite database moved to PostgreSQL and back holds exactly what it
//! held, table by table and row by row; a target that holds anything is refused.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use sqlx::Row;

fn loa(dir: &Path, args: &[&str], db: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_loa"));
    c.args(args).current_dir(dir).env("LOA_LOG", "error");
    if let Some(db) = db {
        c.env("LOA__DATABASE__URL", db);
    }
    c.output().unwrap()
}

fn ok(o: &Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// Every table of a database as text lines, flags read as numbers on both dialects.
async fn dump(url: &str) -> Vec<String> {
    let pool = common::raw_db(url).await;
    let tables = [
        ("orgs", "id"),
        ("contacts", "id"),
        ("guardian_links", "parent_id, student_id"),
        ("templates", "id"),
        ("users", "id"),
        ("api_tokens", "id"),
        ("audit_log", "id"),
        ("campaigns", "id"),
        ("campaign_editors", "campaign_id, user_id"),
        ("runs", "id"),
        ("calendars", "org_id, start_date"),
        ("deliveries", "id"),
        ("receipt_refs", "channel, ref"),
        ("channel_fallbacks", "campaign_id, channel, reason_code"),
        ("channel_pauses", "campaign_id, channel"),
        ("webhook_events", "id"),
        ("settings", "key"),
        ("zalo_tokens", "app_id"),
    ];
    let mut lines = Vec::new();
    for (t, order) in tables {
        // Each row as one text, the same on both dialects for integers and text.
        // Columns by name: the dialects' tables list them in different orders.
        let mut cols = column_names(&pool, url, t).await;
        cols.sort();
        let expr = cols
            .iter()
            .map(|c| format!("COALESCE(CAST(\"{c}\" AS TEXT), 'NULL')"))
            .collect::<Vec<_>>()
            .join(" || '|' || ");
        let rows = sqlx::query(&format!("SELECT {expr} FROM {t} ORDER BY {order}"))
            .fetch_all(&pool)
            .await
            .unwrap();
        for r in rows {
            let line: String = r.try_get(0).unwrap();
            // PostgreSQL prints booleans as true/false, SQLite stores 1/0.
            lines.push(format!(
                "{t}: {}",
                line.split('|')
                    .map(|v| match v {
                        "true" => "1",
                        "false" => "0",
                        v => v,
                    })
                    .collect::<Vec<_>>()
                    .join("|")
            ));
        }
    }
    lines
}

async fn column_names(pool: &sqlx::AnyPool, url: &str, table: &str) -> Vec<String> {
    let q = if url.starts_with("postgres") {
        format!(
            "SELECT column_name::text FROM information_schema.columns WHERE table_schema = current_schema() \
             AND table_name = '{table}' ORDER BY ordinal_position"
        )
    } else {
        format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid")
    };
    sqlx::query(&q)
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get::<String, _>(0).unwrap())
        .collect()
}

#[tokio::test]
async fn a_district_moves_to_postgresql_and_back_unchanged() {
    let Some(base) = std::env::var("LOA_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        common::record_skip("LOA_TEST_POSTGRES_URL is not set: no PostgreSQL to copy into");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // A district with people, two campaigns sent to the end, users, tokens and their audit.
    ok(&loa(
        dir.path(),
        &[
            "demo",
            "--exit-when-done",
            "--listen",
            "127.0.0.1:0",
            "--dir",
            "d",
        ],
        None,
    ));
    let source = format!("sqlite://{}", dir.path().join("d/loa.db").display());
    // The Zalo token pair goes along too.
    let mut set = Command::new(env!("CARGO_BIN_EXE_loa"));
    set.args([
        "zalo",
        "set-token",
        "--app-id",
        "4321",
        "--expires-in",
        "90000",
    ])
    .env("LOA_ZALO_ACCESS_TOKEN", "access-abc")
    .env("LOA_ZALO_REFRESH_TOKEN", "refresh-def")
    .env("LOA__DATABASE__URL", &source)
    .env("LOA_LOG", "error");
    ok(&set.output().unwrap());

    let pg = common::new_postgres_schema(&base);
    // A mistyped source is refused, not created empty and "copied".
    let typo = loa(
        dir.path(),
        &["store", "copy", "--from", "sqlite://d/lao.db", "--to", &pg],
        None,
    );
    assert!(!typo.status.success());
    assert!(String::from_utf8_lossy(&typo.stderr).contains("no database at d/lao.db"));
    assert!(!dir.path().join("d/lao.db").exists());
    let out = ok(&loa(
        dir.path(),
        &["store", "copy", "--from", &source, "--to", &pg],
        None,
    ));
    assert!(out.contains("every table's count verified"), "{out}");
    assert!(
        !out.contains("options["),
        "the URL's query is not printed: {out}"
    );

    let back = format!("sqlite://{}", dir.path().join("back.db").display());
    ok(&loa(
        dir.path(),
        &["store", "copy", "--from", &pg, "--to", &back],
        None,
    ));

    let (a, b) = (dump(&source).await, dump(&back).await);
    assert!(
        a.iter().any(|l| l.starts_with("deliveries: ")),
        "the demo sent something"
    );
    assert!(a.iter().any(|l| l.starts_with("audit_log: ")));
    assert!(a.iter().any(|l| l.starts_with("api_tokens: ")));
    assert!(
        a.iter()
            .any(|l| l.starts_with("zalo_tokens: access-abc|4321|") && l.contains("|refresh-def|"))
    );
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y);
    }
    // The PostgreSQL copy holds the same rows (flags as booleans there, compared as 0/1).
    let p = dump(&pg).await;
    assert_eq!(p.len(), a.len());
    for (x, y) in a.iter().zip(&p) {
        assert_eq!(x, y);
    }

    // New rows on PostgreSQL get ids after the copied ones.
    let pool = common::raw_db(&pg).await;
    let max: i64 = sqlx::query("SELECT max(id) FROM orgs")
        .fetch_one(&pool)
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    let next: i64 = sqlx::query(
        "INSERT INTO orgs (kind, code, name, created_at) VALUES ('province', 'NEW', 'Mới', 0) RETURNING id",
    )
    .fetch_one(&pool)
    .await
    .unwrap()
    .try_get(0)
    .unwrap();
    assert!(next > max, "{next} after {max}");

    // A target that holds anything is refused, and left as it was.
    let again = loa(
        dir.path(),
        &["store", "copy", "--from", &source, "--to", &pg],
        None,
    );
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("not empty"), "{err}");
    assert_eq!(dump(&pg).await.len(), a.len() + 1);

    // A daemon still running on the source (its heartbeat alive) stops the copy before anything.
    let src = common::raw_db(&source).await;
    sqlx::query("INSERT INTO instances (id, started_at, alive_until) VALUES ('9-beef', 0, $1)")
        .bind(loa::clock::now_ms() + 60_000)
        .execute(&src)
        .await
        .unwrap();
    let fresh = common::new_postgres_schema(&base);
    let running = loa(
        dir.path(),
        &["store", "copy", "--from", &source, "--to", &fresh],
        None,
    );
    assert!(!running.status.success());
    let err = String::from_utf8_lossy(&running.stderr);
    assert!(err.contains("stop `loa serve` first"), "{err}");
}
