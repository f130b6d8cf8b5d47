//! `loa store copy`: every table of one store into another, empty one (SQLite to PostgreSQL when a
//! district outgrows one machine, or back), in one transaction on the target, counts verified.
//!
//! Written against sqlx's `Any` driver so one body copies between any two dialects: the tables and
//! their columns are the same in both schemas by design (checked here, table by table), only the
//! column types differ (SQLite's 0/1 INTEGER flags are PostgreSQL BOOLEANs), and each value is
//! converted to the target column's type.

use std::time::Instant;

use futures::TryStreamExt;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use sqlx::{Any, AnyPool, Row};

use super::{Result, StoreError};

/// Every table that holds a district's data, parents before children (each table's rows in key
/// order, so a node comes after its parent). `instances` is left out: it names live processes of
/// the source, not data. The migrations' own table is the target's, written by its migrate. So is
/// `upload_stash`: files uploaded on the import page wait there under an hour for their
/// confirmation; a copy is made with the daemon stopped, and staff upload again.
const TABLES: &[(&str, &str)] = &[
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
    ("calendars", "org_id, start_date, kind, end_date, name"),
    ("deliveries", "id"),
    ("receipt_refs", "channel, ref"),
    ("channel_fallbacks", "campaign_id, channel, reason_code"),
    ("channel_pauses", "campaign_id, channel"),
    ("webhook_events", "id"),
    ("settings", "key"),
    ("zalo_tokens", "app_id"),
    ("web_sessions", "id_hash"),
    ("login_throttle", "key"),
];

/// Tables whose `id` is generated: on PostgreSQL their identity continues after the copied ids.
const IDENTITY_TABLES: &[&str] = &[
    "orgs",
    "contacts",
    "templates",
    "users",
    "api_tokens",
    "audit_log",
    "campaigns",
    "runs",
    "deliveries",
    "webhook_events",
];

/// Rows per INSERT: well under SQLite's 32,766 and PostgreSQL's 65,535 parameters for the widest
/// table (deliveries, 20 columns).
const BATCH_ROWS: usize = 500;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Int,
    Bool,
    Text,
    Real,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dialect {
    Sqlite,
    Postgres,
}

/// One table's outcome, for the CLI to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCopied {
    pub table: &'static str,
    pub rows: u64,
}

/// Copies everything from `from` into `to`, both already migrated to this build's schema (the CLI
/// opens them through `store::open` and `migrate` first). Refuses a target that holds any row;
/// on any error nothing is left in the target (one transaction). `progress` is called after each
/// table.
pub async fn copy_store(
    from: &str,
    to: &str,
    progress: &mut (dyn FnMut(&TableCopied) + Send),
) -> Result<Vec<TableCopied>> {
    sqlx::any::install_default_drivers();
    let (src_d, src_url) = any_url(from)?;
    let (dst_d, dst_url) = any_url(to)?;
    let src = AnyPool::connect(&src_url).await?;
    let dst = AnyPool::connect(&dst_url).await?;
    let mut s = src.acquire().await?;
    // One snapshot of the source for every table: a daemon still writing there would otherwise make
    // the tables disagree (a delivery copied without its run).
    let begin = match src_d {
        Dialect::Sqlite => "BEGIN",
        Dialect::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
    };
    sqlx::query(begin).execute(&mut *s).await?;
    // A daemon still running on the source would go on writing what the copy no longer sees.
    let live: i64 = sqlx::query("SELECT count(*) FROM instances WHERE alive_until > $1")
        .bind(crate::clock::now_ms())
        .fetch_one(&mut *s)
        .await?
        .try_get(0)?;
    if live > 0 {
        return Err(StoreError::Invalid(format!(
            "{live} Loa process(es) still running on the source (see its `instances` table): stop `loa serve` first"
        )));
    }
    let mut t = dst.begin().await?;
    for (table, _) in TABLES {
        let n = count(&mut t, table).await?;
        if n > 0 {
            return Err(StoreError::Invalid(format!(
                "the target is not empty (table {table} holds {n} rows): copy into a new, empty database"
            )));
        }
    }
    let mut done = Vec::new();
    for (table, order) in TABLES {
        let started = Instant::now();
        let src_cols = columns(&mut s, src_d, table).await?;
        let dst_cols = columns(&mut t, dst_d, table).await?;
        let mut names: Vec<&str> = src_cols.iter().map(|(c, _)| c.as_str()).collect();
        let mut want: Vec<&str> = dst_cols.iter().map(|(c, _)| c.as_str()).collect();
        names.sort_unstable();
        want.sort_unstable();
        if names != want {
            return Err(StoreError::Invalid(format!(
                "table {table} has columns {names:?} in the source and {want:?} in the target: \
                 both must be migrated by the same Loa version"
            )));
        }
        // The target's column order and types; the source's type of each column, by name.
        let plan: Vec<(String, Kind, Kind)> = dst_cols
            .iter()
            .map(|(c, k)| {
                let from = src_cols
                    .iter()
                    .find(|(sc, _)| sc == c)
                    .map(|(_, sk)| *sk)
                    .unwrap_or(*k);
                (c.clone(), from, *k)
            })
            .collect();
        let cols = plan
            .iter()
            .map(|(c, _, _)| quote(c))
            .collect::<Vec<_>>()
            .join(", ");
        let select = format!("SELECT {cols} FROM {table} ORDER BY {order}");
        let mut rows = sqlx::query(&select).fetch(&mut *s);
        let mut batch: Vec<Vec<Value>> = Vec::with_capacity(BATCH_ROWS);
        let mut copied = 0u64;
        while let Some(row) = rows.try_next().await? {
            batch.push(read_row(&row, &plan)?);
            if batch.len() == BATCH_ROWS {
                copied += insert(&mut t, table, &cols, &plan, &batch).await?;
                batch.clear();
            }
        }
        drop(rows);
        if !batch.is_empty() {
            copied += insert(&mut t, table, &cols, &plan, &batch).await?;
        }
        let in_source = count(&mut s, table).await?;
        let in_target = count(&mut t, table).await?;
        if in_source != copied || in_target != copied {
            return Err(StoreError::Invalid(format!(
                "table {table}: {in_source} rows in the source, {copied} copied, {in_target} in the target"
            )));
        }
        tracing::info!(
            table,
            rows = copied,
            ms = started.elapsed().as_millis() as u64,
            "table copied"
        );
        let c = TableCopied {
            table,
            rows: copied,
        };
        progress(&c);
        done.push(c);
    }
    if dst_d == Dialect::Postgres {
        for table in IDENTITY_TABLES {
            sqlx::query(&format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                 COALESCE((SELECT max(id) FROM {table}), 0) + 1, false)"
            ))
            .execute(&mut *t)
            .await?;
        }
    }
    t.commit().await?;
    sqlx::query("ROLLBACK").execute(&mut *s).await?;
    Ok(done)
}

/// A value on its way from one dialect to the other.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Int(Option<i64>),
    Bool(Option<bool>),
    Text(Option<String>),
    Real(Option<f64>),
}

fn read_row(row: &AnyRow, plan: &[(String, Kind, Kind)]) -> Result<Vec<Value>> {
    plan.iter()
        .enumerate()
        .map(|(i, (col, from, to))| {
            let v = match from {
                Kind::Int => Value::Int(row.try_get(i)?),
                Kind::Bool => Value::Bool(row.try_get(i)?),
                Kind::Text => Value::Text(row.try_get(i)?),
                Kind::Real => Value::Real(row.try_get(i)?),
            };
            convert(v, *to).ok_or_else(|| {
                StoreError::Invalid(format!("column {col}: a {from:?} cannot become a {to:?}"))
            })
        })
        .collect()
}

/// The source's value as the target column's type: the flags are the only columns whose type
/// differs between the dialects.
fn convert(v: Value, to: Kind) -> Option<Value> {
    Some(match (v, to) {
        (v @ Value::Int(_), Kind::Int)
        | (v @ Value::Bool(_), Kind::Bool)
        | (v @ Value::Text(_), Kind::Text)
        | (v @ Value::Real(_), Kind::Real) => v,
        (Value::Int(i), Kind::Bool) => Value::Bool(i.map(|i| i != 0)),
        (Value::Bool(b), Kind::Int) => Value::Int(b.map(i64::from)),
        _ => return None,
    })
}

async fn insert(
    t: &mut AnyConnection,
    table: &str,
    cols: &str,
    plan: &[(String, Kind, Kind)],
    batch: &[Vec<Value>],
) -> Result<u64> {
    // `$n` placeholders: both SQLite and PostgreSQL read them (the Any driver passes text through).
    let mut sql = format!("INSERT INTO {table} ({cols}) VALUES ");
    let mut n = 0;
    for (r, _) in batch.iter().enumerate() {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..plan.len() {
            if c > 0 {
                sql.push_str(", ");
            }
            n += 1;
            sql.push('$');
            sql.push_str(&n.to_string());
        }
        sql.push(')');
    }
    let mut q = sqlx::query::<Any>(&sql);
    for row in batch {
        for v in row {
            q = match v {
                Value::Int(i) => q.bind(*i),
                Value::Bool(b) => q.bind(*b),
                Value::Text(s) => q.bind(s.clone()),
                Value::Real(f) => q.bind(*f),
            };
        }
    }
    Ok(q.execute(&mut *t).await?.rows_affected())
}

async fn count(c: &mut AnyConnection, table: &str) -> Result<u64> {
    let n: i64 = sqlx::query(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(&mut *c)
        .await?
        .try_get(0)?;
    Ok(n.max(0) as u64)
}

/// A table's columns and their kinds, in the table's order.
async fn columns(c: &mut AnyConnection, d: Dialect, table: &str) -> Result<Vec<(String, Kind)>> {
    let rows: Vec<(String, String)> = match d {
        Dialect::Sqlite => {
            sqlx::query(&format!("SELECT name, type FROM pragma_table_info('{table}') ORDER BY cid"))
                .fetch_all(&mut *c)
                .await?
        }
        Dialect::Postgres => {
            sqlx::query(
                "SELECT column_name::text, data_type::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            )
            .bind(table)
            .fetch_all(&mut *c)
            .await?
        }
    }
    .iter()
    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
    .collect::<Result<_>>()?;
    if rows.is_empty() {
        return Err(StoreError::Invalid(format!("table {table} is missing")));
    }
    rows.into_iter()
        .map(|(name, ty)| {
            let ty = ty.to_ascii_lowercase();
            let kind = if ty.contains("int") {
                Kind::Int
            } else if ty.contains("bool") {
                Kind::Bool
            } else if ty.contains("char") || ty.contains("text") || ty.is_empty() {
                Kind::Text
            } else if ty.contains("real") || ty.contains("double") || ty.contains("float") {
                Kind::Real
            } else {
                return Err(StoreError::Invalid(format!(
                    "table {table}, column {name}: type {ty} is not one Loa stores"
                )));
            };
            Ok((name, kind))
        })
        .collect()
}

fn quote(col: &str) -> String {
    format!("\"{col}\"")
}

/// The dialect of a `database.url` and the URL as the Any driver wants it (a plain path is SQLite).
fn any_url(url: &str) -> Result<(Dialect, String)> {
    match url.split_once("://").map(|(s, _)| s) {
        Some("postgres" | "postgresql") => Ok((Dialect::Postgres, url.to_string())),
        Some("sqlite") => Ok((Dialect::Sqlite, url.to_string())),
        None if url.starts_with("sqlite:") => Ok((Dialect::Sqlite, url.to_string())),
        None => Ok((Dialect::Sqlite, format!("sqlite://{url}"))),
        Some(other) => Err(StoreError::Invalid(format!(
            "unknown database scheme {other:?} (use sqlite:// or postgres://)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_cross_between_dialects_and_nothing_else_is_guessed() {
        assert_eq!(
            convert(Value::Int(Some(1)), Kind::Bool),
            Some(Value::Bool(Some(true)))
        );
        assert_eq!(
            convert(Value::Int(Some(0)), Kind::Bool),
            Some(Value::Bool(Some(false)))
        );
        assert_eq!(
            convert(Value::Bool(Some(true)), Kind::Int),
            Some(Value::Int(Some(1)))
        );
        assert_eq!(
            convert(Value::Int(None), Kind::Bool),
            Some(Value::Bool(None))
        );
        assert_eq!(convert(Value::Text(Some("1".into())), Kind::Int), None);
    }

    #[test]
    fn urls_name_their_dialect() {
        assert_eq!(any_url("/var/lib/loa/loa.db").unwrap().0, Dialect::Sqlite);
        assert_eq!(
            any_url("/var/lib/loa/loa.db").unwrap().1,
            "sqlite:///var/lib/loa/loa.db"
        );
        assert_eq!(
            any_url("postgresql://loa@db/loa").unwrap().0,
            Dialect::Postgres
        );
        assert!(any_url("mysql://x").is_err());
    }
}
