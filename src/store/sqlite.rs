//! SQLite implementation of `Store`: WAL, one writer connection (SQLite allows one writer; a single
//! connection avoids busy retries) and a small pool of readers.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};

mod contact_list;
mod fanout;
mod governance;
mod import;
mod receipts;
mod schedule;
mod synthetic;

use super::*;
use crate::domain::campaign::{Approval, Publication, TemplateBodies};
use crate::domain::contact::{ContactDetails, Role};
use crate::domain::delivery::AttemptRef;
use crate::domain::org::OrgKind;

use super::rows::{
    CAMPAIGN_COLS, CONTACT_COLS, ORG_COLS, PackedContact, SCAN_PAGE_LINKS, SCAN_PLAN_FROM_STUDENTS,
    USER_COLS, corrupt, direct_roles, row_readers,
};

row_readers!(SqliteRow);

/// The schema's migrations, embedded once: `migrate` applies them, `readiness` compares with the newest.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// A write fault injected by tests, applied to every writer connection (see `inject_fault`).
    fault: Arc<std::sync::Mutex<Option<WriteFault>>>,
    /// This process, as the holder of the leases it claims (one store handle per process).
    owner: String,
}

/// A real SQLite write failure, produced on purpose so tests see what a full or failing disk does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteFault {
    /// The file may not grow past its current size (`PRAGMA max_page_count`): the next write that
    /// needs a new page fails with SQLITE_FULL, as on a full disk. Writes in place still succeed.
    Full,
    /// Every write fails (`PRAGMA query_only`), as when the disk refuses all writes.
    ReadOnly,
}

/// The PRAGMAs that put a writer connection into (or out of) a fault.
fn fault_pragmas(f: Option<WriteFault>) -> &'static [&'static str] {
    match f {
        // Setting max_page_count below the file's size leaves it at the size: no growth allowed.
        Some(WriteFault::Full) => &["PRAGMA query_only = OFF", "PRAGMA max_page_count = 1"],
        Some(WriteFault::ReadOnly) => &["PRAGMA query_only = ON"],
        None => &[
            "PRAGMA query_only = OFF",
            "PRAGMA max_page_count = 4294967294",
        ],
    }
}

/// A write's `RETURNING` rows, read with the statement run to its end. sqlx's `fetch_one` and
/// `fetch_optional` stop SQLite after the first row, and in autocommit mode the commit happens when
/// the statement finishes: an error there (SQLITE_FULL) was lost, so the caller got an id for a row
/// that had been rolled back, and the next insert was handed the same id. Every write with
/// `RETURNING` reads its row through here (or `fetch_all`).
trait Written<'q> {
    fn written_opt<'e, 'c: 'e, E>(self, e: E) -> BoxFuture<'e, Result<Option<SqliteRow>>>
    where
        'q: 'e,
        E: 'e + sqlx::Executor<'c, Database = Sqlite>;

    fn written_row<'e, 'c: 'e, E>(self, e: E) -> BoxFuture<'e, Result<SqliteRow>>
    where
        'q: 'e,
        E: 'e + sqlx::Executor<'c, Database = Sqlite>,
        Self: Sized + Send + 'e,
    {
        let opt = self.written_opt(e);
        Box::pin(async move { opt.await?.ok_or(StoreError::NotFound("row")) })
    }
}

impl<'q> Written<'q> for sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    fn written_opt<'e, 'c: 'e, E>(self, e: E) -> BoxFuture<'e, Result<Option<SqliteRow>>>
    where
        'q: 'e,
        E: 'e + sqlx::Executor<'c, Database = Sqlite>,
    {
        Box::pin(async move { Ok(self.fetch_all(e).await?.into_iter().next()) })
    }
}

fn json_ids(ids: &[i64]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".into())
}

/// A running campaign with no open run left: a recurring one waits for its next slot, any other is
/// done (?1 now, ?2 campaign id). Returns the new state when it moved.
const SETTLE_CAMPAIGN: &str = "UPDATE campaigns SET \
     state = CASE WHEN schedule IS NOT NULL AND schedule_ended = 0 THEN 'scheduled' ELSE 'done' END, \
     updated_at = ?1 WHERE id = ?2 AND state = 'running' \
     AND NOT EXISTS (SELECT 1 FROM runs WHERE campaign_id = ?2 AND state IN ('pending','running')) RETURNING state";
impl SqliteStore {
    /// Stores an app's token pair; `overwrite` false keeps a pair already stored.
    async fn put_zalo_token(
        &self,
        app_id: &str,
        p: &TokenPair,
        now: Millis,
        overwrite: bool,
    ) -> Result<()> {
        let on_conflict = if overwrite {
            "DO UPDATE SET access_token = excluded.access_token, refresh_token = excluded.refresh_token, \
             expires_at = excluded.expires_at, updated_at = excluded.updated_at"
        } else {
            "DO NOTHING"
        };
        sqlx::query(&format!(
            "INSERT INTO zalo_tokens (app_id, access_token, refresh_token, expires_at, updated_at) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (app_id) {on_conflict}"
        ))
        .bind(app_id)
        .bind(&p.access_token)
        .bind(&p.refresh_token)
        .bind(p.expires_at_ms)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}

/// A delivery as the dispatcher handles it, with the person's addresses (a Zalo user id only while
/// they follow the OA) and whether staff chose to skip its channel for the campaign; columns of
/// `deliveries`, unqualified, so the same list serves the claim's `RETURNING` (one statement, not an
/// UPDATE of ids and then a SELECT of them: 8 us a delivery, half the claim) and a plain
/// `SELECT … FROM deliveries`. RETURNING cannot join, so the person comes from one correlated lookup
/// packed as a JSON array (five lookups and five more values copied out of SQLite cost more than
/// building and reading the array). Read by position in `claimed_from`.
const CLAIMED_COLUMNS: &str = "id, run_id, campaign_id, contact_id, channel, channel_index, attempts, state, reason, vars, \
     (SELECT json_array(c.phone, c.email, CASE WHEN c.zalo_following = 1 THEN c.zalo_user_id END, c.facebook_psid, \
        c.opt_out) FROM contacts c WHERE c.id = deliveries.contact_id), \
     EXISTS (SELECT 1 FROM channel_pauses p WHERE p.campaign_id = deliveries.campaign_id \
       AND p.channel = deliveries.channel AND p.skip = 1)";

/// A delivery still on the attempt a report names (?2 channel index, ?3 attempt; both NULL: any).
/// The attempt counter moves when the outcome is recorded, so while the send is in flight the row
/// still shows the attempt before it.
const ON_ATTEMPT: &str = "(?2 IS NULL OR (channel_index = ?2 AND (attempts = ?3 OR (state = 'sending' AND attempts = ?3 - 1))))";

/// A run whose deliveries may be claimed (`r` is the run): open and not held by staff.
const CLAIMABLE_RUN: &str = "r.state IN ('pending','running') AND r.paused = 0";

/// The `HOLDER_GONE` condition with the placeholders for now and this process given.
macro_rules! holder_gone {
    ($now:literal, $me:literal) => {
        concat!(
            "(d.lease_owner IS NULL OR (d.lease_owner <> ",
            $me,
            " AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = d.lease_owner AND i.alive_until > ",
            $now,
            ")))"
        )
    };
}

/// A leased delivery `d` whose holder is gone (with ?2 now, ?5 this process): not this process, which
/// holds all it claimed until it records an outcome or gives it back, and not a process whose row in
/// `instances` is alive. A lease that ran out while its holder lives (a slow gateway, a long wait for
/// a send slot) is not taken from it.
const HOLDER_GONE: &str = holder_gone!("?2", "?5");

/// The claim's two statements, built once: expired leases first (a crashed sender's work), then due
/// deliveries. Each walks one partial index; the PostgreSQL twin adds FOR UPDATE SKIP LOCKED to the
/// inner SELECT. ?1 lease end, ?2 now, ?3 channels to skip (JSON), ?4 how many, ?5 this process.
static CLAIM_STATEMENTS: std::sync::LazyLock<[String; 2]> = std::sync::LazyLock::new(|| {
    // Leases expire in time order across all runs; the index is small (what is in flight).
    let expired = format!(
        "SELECT d.id FROM deliveries d INDEXED BY deliveries_leased JOIN runs r ON r.id = d.run_id \
         WHERE d.state = 'sending' AND d.lease_until <= ?2 AND {CLAIMABLE_RUN} AND {HOLDER_GONE}"
    );
    // Due work run by run (urgent campaigns' runs first, then the oldest), each run's in due order: the
    // outer loop is the handful of open runs and the inner one walks `deliveries_due` within a run,
    // stopping after `LIMIT` rows, so nothing is sorted. Across runs this is first come, first served,
    // as a single due-time order was, except that urgent campaigns no longer wait behind a large run's
    // backlog. MATERIALIZED keeps the runs' order: as a plain subquery SQLite flattened it into the
    // join and dropped its ORDER BY.
    let due = format!(
        "WITH ar AS MATERIALIZED (SELECT r.id FROM runs r JOIN campaigns c ON c.id = r.campaign_id \
           WHERE {CLAIMABLE_RUN} ORDER BY c.urgent DESC, r.id) \
         SELECT d.id FROM ar CROSS JOIN deliveries d INDEXED BY deliveries_due \
         WHERE d.run_id = ar.id AND d.state IN ('queued','retrying') AND d.next_attempt_at <= ?2"
    );
    [(expired, "ORDER BY d.lease_until"), (due, "")].map(|(select, order)| {
        format!(
            "UPDATE deliveries SET state = 'sending', lease_until = ?1, lease_owner = ?5, updated_at = ?2 WHERE id IN ( \
               {select} \
                 AND COALESCE(d.channel, '') NOT IN (SELECT value FROM json_each(?3)) \
                 AND NOT EXISTS (SELECT 1 FROM channel_pauses p \
                   WHERE p.campaign_id = d.campaign_id AND p.channel = d.channel AND p.skip = 0) \
               {order} LIMIT ?4) \
             RETURNING {CLAIMED_COLUMNS}"
        )
    })
});

impl SqliteStore {
    /// Opens (creating if missing) the database at a `sqlite://` URL or a plain path. Two processes
    /// opening a new database at once (`loa serve` and a `loa user create` beside it) race to switch
    /// it to WAL, and SQLite answers the loser "database is locked" at once, without waiting out
    /// the busy timeout: that is retried for a few seconds.
    pub async fn open(url: &str) -> Result<Self> {
        let mut tries = 0;
        loop {
            match Self::open_once(url).await {
                Err(StoreError::Unavailable(e)) if tries < 25 => {
                    tries += 1;
                    tracing::debug!(error = %e, tries, "opening the database failed; trying again");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                r => return r,
            }
        }
    }

    async fn open_once(url: &str) -> Result<Self> {
        let url = if url.starts_with("sqlite:") {
            url.to_string()
        } else {
            format!("sqlite://{url}")
        };
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .map(|p| p.split('?').next().unwrap_or(p))
            && let Some(dir) = std::path::Path::new(path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Invalid(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let opts = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // Deleted content is overwritten with zeros, not left in free space of the file: an
            // erased person cannot be read back from it. Measured (SQLite 3.40, WAL, 100,000
            // deliveries, best of 3 on a loaded 2-core machine): fan-out inserts and claim + record
            // updates showed no cost (within noise, 7.7 s / 10.1 s off, 6.7 s / 8.2 s on); deleting
            // half the rows at once took 1.34 s instead of 0.83 s. Loa deletes rarely (erasures).
            .pragma("secure_delete", "ON")
            .statement_cache_capacity(256)
            // sqlx hands rows from SQLite's thread to the caller through a channel of this size; at its
            // default (50) a claim of 256 rows stalls that thread five times waiting for the reader.
            .row_buffer_size(1024);
        let fault: Arc<std::sync::Mutex<Option<WriteFault>>> = Arc::default();
        let on_connect = fault.clone();
        // Every transaction on the writer starts with BEGIN IMMEDIATE: a deferred one that reads and
        // then writes fails at once with "database is locked" (SQLITE_BUSY, no busy wait) when
        // another process (`loa serve` beside a `loa import`) committed in between; an immediate
        // one takes the write lock first and waits out the busy timeout.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .after_connect(move |conn, _| {
                let f = on_connect.lock().map(|f| *f).unwrap_or(None);
                Box::pin(async move {
                    if f.is_some() {
                        for p in fault_pragmas(f) {
                            sqlx::query(p).execute(&mut *conn).await?;
                        }
                    }
                    Ok(())
                })
            })
            // The writer goes back to the pool only as clean as it was taken. After a failed
            // statement SQLite may have rolled the transaction back on its own (SQLITE_FULL, IOERR),
            // and then sqlx's ROLLBACK fails and it still counts a transaction open: its next
            // `begin` would be a SAVEPOINT, its "commit" a RELEASE that commits nothing, and every
            // later write would be lost while its caller was told it succeeded. Such a connection
            // is closed (which rolls back whatever SQLite still holds) and the pool opens a fresh one.
            .after_release(|conn, _| {
                Box::pin(async move {
                    // After a commit the count is already zero: no extra trip to SQLite's thread
                    // on the hot path. After a dropped transaction its ROLLBACK is still queued on
                    // the connection's worker; a ping runs after it, so the count read then is the
                    // settled one.
                    if !sqlx::Connection::is_in_transaction(conn) {
                        return Ok(true);
                    }
                    if sqlx::Connection::ping(&mut *conn).await.is_err() {
                        return Ok(false);
                    }
                    let clean = !sqlx::Connection::is_in_transaction(conn);
                    if !clean {
                        tracing::warn!(
                            "writer connection left inside a transaction: closed, a fresh one opens"
                        );
                    }
                    Ok(clean)
                })
            })
            .connect_with(opts.clone())
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts.read_only(true))
            .await?;
        Ok(SqliteStore {
            writer,
            reader,
            fault,
            owner: super::new_instance_id(),
        })
    }

    /// Copies the WAL into the database file and truncates the WAL to zero bytes, so that pages
    /// overwritten since (an erasure) are not left readable in it. Readers in the middle of a read
    /// hold it off (`busy`); it is tried again a few times, then left to the automatic checkpoints.
    async fn checkpoint_truncate(&self) {
        for _ in 0..20 {
            match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(&self.writer)
                .await
            {
                Ok((0, _, _)) => return,
                Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(e) => {
                    tracing::warn!(error = %e, "WAL checkpoint after an erasure failed");
                    return;
                }
            }
        }
        tracing::warn!("WAL checkpoint after an erasure kept finding readers; left to SQLite");
    }

    /// Makes the writer fail the way a full or failing disk does, or heals it (`None`). Only tests
    /// call this; the fault is real SQLite behaviour, not a simulated error.
    pub async fn inject_fault(&self, f: Option<WriteFault>) -> Result<()> {
        if let Ok(mut g) = self.fault.lock() {
            *g = f;
        }
        let mut conn = self.writer.acquire().await?;
        for p in fault_pragmas(f) {
            sqlx::query(p).execute(&mut *conn).await?;
        }
        Ok(())
    }

    async fn fetch_org(&self, id: i64) -> Result<Org> {
        let row = sqlx::query(&format!("SELECT {ORG_COLS} FROM orgs WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.writer)
            .await?
            .ok_or(StoreError::NotFound("organisation"))?;
        org_from(&row)
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn readiness(&self) -> Result<()> {
        let head = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.reader)
                .await?;
        match applied {
            Some(v) if v == head => Ok(()),
            Some(v) => Err(StoreError::Invalid(format!(
                "schema at migration {v}, this build expects {head}"
            ))),
            None => Err(StoreError::Invalid("no migration applied".into())),
        }
    }

    async fn migrate(&self) -> Result<()> {
        // sqlx takes no lock across processes for SQLite: `loa serve` and a `loa user create` started
        // beside it on a new database both read "migration 2 not applied", and the second to run it
        // fails ("table users already exists", its transaction rolled back). Run again, it finds the
        // other's work applied and goes on; a migration that is really broken fails every time.
        let mut tries = 0;
        loop {
            match MIGRATOR.run(&self.writer).await {
                Ok(()) => break,
                Err(e) if tries < 5 => {
                    tries += 1;
                    tracing::debug!(error = %e, tries, "migration failed; another process may be migrating, trying again");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        // The migrations' pages (every table ever rebuilt) would otherwise stay in the WAL until the
        // first automatic checkpoint: fold them into the database file and empty the WAL, so a fresh
        // database takes no more space than its schema. Nothing is lost if this cannot be done now.
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.writer)
            .await
        {
            tracing::warn!(error = %e, "WAL checkpoint after migration not done");
        }
        Ok(())
    }

    async fn live_instances(&self, now: Millis) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM instances WHERE alive_until > ?")
                .bind(now)
                .fetch_one(&self.reader)
                .await?,
        )
    }

    async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String> {
        sqlx::query("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(value)
            .execute(&self.writer)
            .await?;
        Ok(sqlx::query("SELECT value FROM settings WHERE key = ?")
            .bind(key)
            .fetch_one(&self.writer)
            .await?
            .try_get(0)?)
    }
}

// After the macros above, which the areas use.
mod areas;
