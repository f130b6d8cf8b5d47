//! sqlx's errors as `StoreError`, for both dialects: which failures mean "the database cannot take
//! this right now" (the API's 503, the dispatcher's back-off) and which are the caller's conflict.

use super::StoreError;

/// SQLite's primary result codes that mean the database cannot be written (or read) right now,
/// whatever the statement: SQLITE_BUSY (after the busy timeout), LOCKED, NOMEM, READONLY, IOERR,
/// FULL, CANTOPEN, PROTOCOL.
const SQLITE_UNAVAILABLE: [i64; 8] = [5, 6, 7, 8, 10, 13, 14, 15];

/// PostgreSQL SQLSTATEs (or their class, two characters) with the same meaning: connection
/// exceptions (08), insufficient resources (53: disk full, out of memory, too many connections),
/// operator intervention (57: shutdown, cannot connect now), system errors (58: I/O), a read-only
/// server (25006: a standby after a failover), and serialization failures and deadlocks (40001,
/// 40P01), which succeed when tried again.
const PG_UNAVAILABLE: [&str; 7] = ["08", "53", "57", "58", "25006", "40001", "40P01"];

fn unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            let Some(code) = db.code() else { return false };
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                code.parse::<i64>()
                    .is_ok_and(|c| SQLITE_UNAVAILABLE.contains(&(c & 0xff)))
            } else {
                PG_UNAVAILABLE.iter().any(|p| {
                    if p.len() == 2 {
                        code.starts_with(p)
                    } else {
                        code == *p
                    }
                })
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        _ => false,
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            _ if unavailable(&e) => StoreError::Unavailable(e.to_string()),
            sqlx::Error::RowNotFound => StoreError::NotFound("row"),
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(db.message().to_string())
            }
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                StoreError::InvalidReference(db.message().to_string())
            }
            _ => StoreError::Db(e),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Invalid(format!("migration failed: {e}"))
    }
}
