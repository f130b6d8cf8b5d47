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

/// SQLite's primary result codes that mean the database cannot be written (or read) right now,
/// whatever the statement: SQLITE_BUSY (after the busy timeout), LOCKED, NOMEM, READONLY, IOERR,
/// FULL, CANTOPEN, PROTOCOL.
const UNAVAILABLE_CODES: [i64; 8] = [5, 6, 7, 8, 10, 13, 14, 15];

fn unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|c| c.parse::<i64>().ok())
            .is_some_and(|c| UNAVAILABLE_CODES.contains(&(c & 0xff))),
        sqlx::Error::Io(_)
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

fn corrupt(what: &str, v: &str) -> StoreError {
    StoreError::Corrupt(format!("{what}: {v:?}"))
}

fn channel_col<I: sqlx::ColumnIndex<SqliteRow>>(
    row: &SqliteRow,
    col: I,
) -> Result<Option<Channel>> {
    match row.try_get::<Option<String>, _>(col)? {
        None => Ok(None),
        Some(s) => Channel::parse(&s)
            .map(Some)
            .ok_or_else(|| corrupt("channel", &s)),
    }
}

fn json_ids(ids: &[i64]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".into())
}

const CONTACT_COLS: &str = "id, org_id, role, full_name, phone, email, zalo_user_id, facebook_psid, student_code, opt_out, \
     consent_source, consent_at, created_at, other_phones, landline, position, staff_group";
const CAMPAIGN_COLS: &str = "id, org_id, name, template_id, audience, channels, messenger_tag, state, send_at, created_at, updated_at, \
     created_by, submitted_by, approved_by, approved_at, approval, approval_hash, rejection_reason, \
     schedule, series, urgent, schedule_ended, schedule_cursor, paused";
/// A running campaign with no open run left: a recurring one waits for its next slot, any other is
/// done (?1 now, ?2 campaign id). Returns the new state when it moved.
const SETTLE_CAMPAIGN: &str = "UPDATE campaigns SET \
     state = CASE WHEN schedule IS NOT NULL AND schedule_ended = 0 THEN 'scheduled' ELSE 'done' END, \
     updated_at = ?1 WHERE id = ?2 AND state = 'running' \
     AND NOT EXISTS (SELECT 1 FROM runs WHERE campaign_id = ?2 AND state IN ('pending','running')) RETURNING state";
const ORG_COLS: &str = "id, parent_id, kind, code, name, path, self_approval";

fn org_from(row: &SqliteRow) -> Result<Org> {
    let kind: String = row.try_get("kind")?;
    Ok(Org {
        id: row.try_get("id")?,
        parent_id: row.try_get("parent_id")?,
        kind: OrgKind::parse(&kind).ok_or_else(|| corrupt("org kind", &kind))?,
        code: row.try_get("code")?,
        name: row.try_get("name")?,
        path: row.try_get("path")?,
        self_approval: row.try_get("self_approval")?,
    })
}

fn addresses_from(row: &SqliteRow) -> Result<Addresses> {
    Ok(Addresses {
        phone: row.try_get("phone")?,
        email: row.try_get("email")?,
        zalo_user_id: row.try_get("zalo_user_id")?,
        facebook_psid: row.try_get("facebook_psid")?,
    })
}

fn contact_from(row: &SqliteRow) -> Result<Contact> {
    let role: String = row.try_get("role")?;
    Ok(Contact {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        role: Role::parse(&role).ok_or_else(|| corrupt("role", &role))?,
        full_name: row.try_get("full_name")?,
        student_code: row.try_get("student_code")?,
        addresses: addresses_from(row)?,
        opted_out: OptOuts(row.try_get("opt_out")?).channels(),
        consent_source: row.try_get("consent_source")?,
        consent_at: row.try_get("consent_at")?,
        created_at: row.try_get("created_at")?,
        details: ContactDetails {
            other_phones: match row.try_get::<Option<String>, _>("other_phones")? {
                Some(j) => serde_json::from_str(&j).map_err(|_| corrupt("other_phones", &j))?,
                None => Vec::new(),
            },
            landline: row.try_get("landline")?,
            position: row.try_get("position")?,
            group: row.try_get("staff_group")?,
        },
    })
}

fn campaign_from(row: &SqliteRow) -> Result<Campaign> {
    let audience: String = row.try_get("audience")?;
    let channels: String = row.try_get("channels")?;
    let state: String = row.try_get("state")?;
    Ok(Campaign {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        name: row.try_get("name")?,
        template_id: row.try_get("template_id")?,
        audience: serde_json::from_str(&audience).map_err(|_| corrupt("audience", &audience))?,
        channels: serde_json::from_str(&channels).map_err(|_| corrupt("channels", &channels))?,
        messenger_tag: row.try_get("messenger_tag")?,
        state: CampaignState::parse(&state).ok_or_else(|| corrupt("campaign state", &state))?,
        send_at: row.try_get("send_at")?,
        schedule: json_col(row, "schedule")?,
        series: json_col(row, "series")?.unwrap_or_default(),
        urgent: row.try_get("urgent")?,
        schedule_ended: row.try_get("schedule_ended")?,
        schedule_cursor: row.try_get("schedule_cursor")?,
        paused: row.try_get("paused")?,
        created_by: row.try_get("created_by")?,
        submitted_by: row.try_get("submitted_by")?,
        approval: match (
            row.try_get::<Option<i64>, _>("approved_by")?,
            row.try_get::<Option<String>, _>("approval_hash")?,
        ) {
            (Some(approved_by), Some(hash)) => Some(Approval {
                approved_by,
                approved_at: row.try_get::<Option<i64>, _>("approved_at")?.unwrap_or(0),
                hash,
                snapshot: json_col(row, "approval")?.unwrap_or_default(),
            }),
            _ => None,
        },
        rejection_reason: row.try_get("rejection_reason")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

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

/// An optional JSON column as its type.
fn json_col<T: serde::de::DeserializeOwned>(r: &SqliteRow, col: &'static str) -> Result<Option<T>> {
    match r.try_get::<Option<String>, _>(col)? {
        Some(j) => Ok(Some(
            serde_json::from_str(&j).map_err(|_| corrupt(col, &j))?,
        )),
        None => Ok(None),
    }
}

fn template_from(r: &SqliteRow) -> Result<Template> {
    Ok(Template {
        id: r.try_get("id")?,
        org_id: r.try_get("org_id")?,
        name: r.try_get("name")?,
        bodies: TemplateBodies {
            email_subject: r.try_get("email_subject")?,
            email_text: r.try_get("email_text")?,
            email_html: r.try_get("email_html")?,
            sms_text: r.try_get("sms_text")?,
            zalo_text: r.try_get("zalo_text")?,
            messenger_text: r.try_get("messenger_text")?,
            zns: json_col(r, "zns")?,
            zalo_transaction: json_col(r, "zalo_transaction")?,
        },
        created_by: r.try_get("created_by")?,
        published: match r.try_get::<Option<i64>, _>("published_at")? {
            Some(published_at) => Some(Publication {
                published_by: r.try_get::<Option<i64>, _>("published_by")?.unwrap_or(0),
                published_at,
                topics: json_col(r, "topics")?.unwrap_or_default(),
            }),
            None => None,
        },
        created_at: r.try_get("created_at")?,
    })
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

/// A person's addresses and opt-outs as `CLAIMED_COLUMNS` packs them.
type PackedContact = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
);

fn claimed_from(row: &SqliteRow) -> Result<Claimed> {
    let state: String = row.try_get(7)?;
    let contact: Option<String> = row.try_get(10)?;
    let (phone, email, zalo_user_id, facebook_psid, opt_out): PackedContact = match contact {
        Some(j) => serde_json::from_str(&j).map_err(|_| corrupt("claimed contact", &j))?,
        None => Default::default(),
    };
    Ok(Claimed {
        id: row.try_get(0)?,
        run_id: row.try_get(1)?,
        campaign_id: row.try_get(2)?,
        contact_id: row.try_get(3)?,
        channel: channel_col(row, 4)?,
        channel_index: row.try_get(5)?,
        attempts: row.try_get(6)?,
        state: DeliveryState::parse(&state).ok_or_else(|| corrupt("delivery state", &state))?,
        reason: row.try_get(8)?,
        vars: row.try_get(9)?,
        addresses: Addresses {
            phone,
            email,
            zalo_user_id,
            facebook_psid,
        },
        opt_out: OptOuts(opt_out.unwrap_or(0)),
        channel_skipped: row.try_get(11)?,
    })
}

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

/// From this many students in the subtree, parents are found by walking all guardian links in pages.
const SCAN_PLAN_FROM_STUDENTS: i64 = 20_000;
/// Guardian links per page of that walk: each page is one statement of bounded length, between which
/// the dispatcher's claims and writes get the writer.
const SCAN_PAGE_LINKS: i64 = 20_000;

/// Roles reached directly (not through a child), in fan-out order. A class filter reaches students
/// only: parents and staff belong to schools, not classes.
fn direct_roles(a: &Audience) -> Vec<&'static str> {
    let mut roles = Vec::new();
    if a.roles.contains(&Role::Parent) && a.class_ids.is_empty() {
        roles.push("parent");
    }
    if a.roles.contains(&Role::Student) {
        roles.push("student");
    }
    if a.roles.contains(&Role::Staff) && a.class_ids.is_empty() {
        roles.push("staff");
    }
    roles
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<()> {
        // sqlx takes no lock across processes for SQLite: `loa serve` and a `loa user create` started
        // beside it on a new database both read "migration 2 not applied", and the second to run it
        // fails ("table users already exists", its transaction rolled back). Run again, it finds the
        // other's work applied and goes on; a migration that is really broken fails every time.
        let mut tries = 0;
        loop {
            match sqlx::migrate!("./migrations/sqlite")
                .run(&self.writer)
                .await
            {
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

    async fn create_org(&self, o: &NewOrg, now: Millis) -> Result<Org> {
        let parent = match o.parent_id {
            Some(p) => Some(
                self.fetch_org(p)
                    .await
                    .map_err(|_| StoreError::InvalidReference(format!("parent_id {p}")))?,
            ),
            None => None,
        };
        if !o.kind.allowed_parent(parent.as_ref().map(|p| p.kind)) {
            return Err(StoreError::Invalid(format!(
                "a {} cannot be placed under {}",
                o.kind.as_str(),
                parent
                    .as_ref()
                    .map(|p| p.kind.as_str())
                    .unwrap_or("nothing (root)")
            )));
        }
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let id: i64 = sqlx::query("INSERT INTO orgs (parent_id, kind, code, name, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id")
            .bind(o.parent_id)
            .bind(o.kind.as_str())
            .bind(o.code.trim())
            .bind(o.name.trim())
            .bind(now)
            .written_row(&mut *tx)
            .await?
            .try_get(0)?;
        let path = format!(
            "{}{id}/",
            parent.as_ref().map(|p| p.path.as_str()).unwrap_or("/")
        );
        sqlx::query("UPDATE orgs SET path = ? WHERE id = ?")
            .bind(&path)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.fetch_org(id).await
    }

    async fn get_org(&self, id: i64) -> Result<Org> {
        self.fetch_org(id).await
    }

    async fn list_orgs(&self, parent_id: Option<i64>) -> Result<Vec<Org>> {
        let rows = match parent_id {
            Some(p) => {
                sqlx::query(&format!(
                    "SELECT {ORG_COLS} FROM orgs WHERE parent_id = ? ORDER BY id"
                ))
                .bind(p)
                .fetch_all(&self.reader)
                .await?
            }
            None => {
                sqlx::query(&format!("SELECT {ORG_COLS} FROM orgs ORDER BY path"))
                    .fetch_all(&self.reader)
                    .await?
            }
        };
        rows.iter().map(org_from).collect()
    }

    async fn set_self_approval(&self, org_id: i64, allowed: bool) -> Result<Org> {
        self.do_set_self_approval(org_id, allowed).await?;
        self.fetch_org(org_id).await
    }

    async fn create_user(&self, u: &NewUser, now: Millis) -> Result<User> {
        self.do_create_user(u, now).await
    }
    async fn get_user(&self, id: i64) -> Result<User> {
        self.do_get_user(Some(id), None).await
    }
    async fn user_by_name(&self, username: &str) -> Result<User> {
        self.do_get_user(None, Some(username)).await
    }
    async fn list_users(&self, org_path: &str) -> Result<Vec<User>> {
        self.do_list_users(org_path).await
    }
    async fn password_hash(&self, username: &str) -> Result<Option<String>> {
        self.do_password_hash(username).await
    }
    async fn create_api_token(
        &self,
        user_id: i64,
        name: &str,
        token_hash: &str,
        now: Millis,
    ) -> Result<i64> {
        self.do_create_api_token(user_id, name, token_hash, now)
            .await
    }
    async fn revoke_api_token(&self, user_id: i64, token_id: i64, now: Millis) -> Result<bool> {
        self.do_revoke_api_token(user_id, token_id, now).await
    }
    async fn principal_by_token(&self, token_hash: &str) -> Result<Option<Principal>> {
        self.do_principal_by_token(token_hash).await
    }
    async fn audit(&self, e: &AuditEntry, now: Millis) -> Result<()> {
        self.do_audit(e, now).await
    }
    async fn list_audit(
        &self,
        org_path: &str,
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditRow>> {
        self.do_list_audit(org_path, before_id, limit).await
    }
    async fn publish_template(
        &self,
        id: i64,
        by: i64,
        topics: &[String],
        now: Millis,
    ) -> Result<bool> {
        self.do_publish_template(id, by, topics, now).await
    }
    async fn library(&self, user_path: &str, topic: Option<&str>) -> Result<Vec<Template>> {
        self.do_library(user_path, topic).await
    }
    async fn update_campaign(
        &self,
        id: i64,
        c: &NewCampaign,
        from: &[CampaignState],
        expected_updated_at: Millis,
        editor: i64,
        now: Millis,
    ) -> Result<bool> {
        self.do_update_campaign(id, c, from, expected_updated_at, editor, now)
            .await
    }
    async fn campaign_editors(&self, id: i64) -> Result<Vec<i64>> {
        self.do_campaign_editors(id).await
    }
    async fn submit_campaign(&self, id: i64, by: i64, now: Millis) -> Result<bool> {
        self.do_submit_campaign(id, by, now).await
    }
    async fn approve_campaign(
        &self,
        id: i64,
        by: i64,
        expected_updated_at: Millis,
        snapshot: &serde_json::Value,
        hash: &str,
        now: Millis,
    ) -> Result<bool> {
        self.do_approve_campaign(id, by, expected_updated_at, snapshot, hash, now)
            .await
    }
    async fn reject_campaign(&self, id: i64, reason: &str, now: Millis) -> Result<bool> {
        self.do_reject_campaign(id, reason, now).await
    }
    async fn revoke_approval(&self, id: i64, from: &[CampaignState], now: Millis) -> Result<bool> {
        self.do_revoke_approval(id, from, now).await
    }

    async fn create_contact(&self, c: &NewContact, now: Millis) -> Result<Contact> {
        let org = self
            .fetch_org(c.org_id)
            .await
            .map_err(|_| StoreError::InvalidReference(format!("org_id {}", c.org_id)))?;
        let school_id = match org.kind {
            OrgKind::School => Some(org.id),
            OrgKind::Class => org.parent_id,
            _ => None,
        };
        if c.role == Role::Student && org.kind != OrgKind::Class && org.kind != OrgKind::School {
            return Err(StoreError::Invalid(
                "a student belongs to a class or a school".into(),
            ));
        }
        let row = sqlx::query(&format!(
            "INSERT INTO contacts (org_id, school_id, role, full_name, phone, email, zalo_user_id, facebook_psid, \
             student_code, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING {CONTACT_COLS}"
        ))
        .bind(c.org_id)
        .bind(school_id)
        .bind(c.role.as_str())
        .bind(&c.full_name)
        .bind(&c.addresses.phone)
        .bind(&c.addresses.email)
        .bind(&c.addresses.zalo_user_id)
        .bind(&c.addresses.facebook_psid)
        .bind(&c.student_code)
        .bind(now)
        .bind(now)
        .written_row(&self.writer)
        .await?;
        contact_from(&row)
    }

    async fn list_contacts(&self, f: &ContactFilter) -> Result<ContactPage> {
        self.do_list_contacts(f).await
    }
    async fn get_contact(&self, id: i64) -> Result<Contact> {
        let row = sqlx::query(&format!("SELECT {CONTACT_COLS} FROM contacts WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
            .ok_or(StoreError::NotFound("contact"))?;
        contact_from(&row)
    }

    async fn set_opt_out(
        &self,
        id: i64,
        channel: Channel,
        out: bool,
        now: Millis,
    ) -> Result<Contact> {
        let sql = if out {
            format!(
                "UPDATE contacts SET opt_out = opt_out | ?1, updated_at = ?2 WHERE id = ?3 RETURNING {CONTACT_COLS}"
            )
        } else {
            format!(
                "UPDATE contacts SET opt_out = opt_out & ~?1, updated_at = ?2 WHERE id = ?3 RETURNING {CONTACT_COLS}"
            )
        };
        let row = sqlx::query(&sql)
            .bind(channel.bit())
            .bind(now)
            .bind(id)
            .written_opt(&self.writer)
            .await?
            .ok_or(StoreError::NotFound("contact"))?;
        contact_from(&row)
    }

    async fn set_consent(&self, id: i64, source: &str, at: Millis, now: Millis) -> Result<Contact> {
        let row = sqlx::query(&format!(
            "UPDATE contacts SET consent_source = ?1, consent_at = ?2, updated_at = ?3 WHERE id = ?4 RETURNING {CONTACT_COLS}"
        ))
        .bind(source)
        .bind(at)
        .bind(now)
        .bind(id)
        .written_opt(&self.writer)
        .await?
        .ok_or(StoreError::NotFound("contact"))?;
        contact_from(&row)
    }

    async fn erase_contact(&self, id: i64, now: Millis) -> Result<bool> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let Some(person) = sqlx::query(
            "SELECT full_name, phone, email, zalo_user_id, facebook_psid, student_code \
             FROM contacts WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(false);
        };
        let name: String = person.try_get("full_name")?;
        // Every form in which a table may hold one of the person's addresses or ids.
        let mut ids: Vec<String> = ["phone", "email", "zalo_user_id", "facebook_psid"]
            .into_iter()
            .filter_map(|c| person.try_get::<Option<String>, _>(c).ok().flatten())
            .filter(|v| !v.trim().is_empty())
            .collect();
        if let Some(p) = ids.iter().find(|v| v.starts_with('+')).cloned() {
            ids.push(providers::wire_phone(&p).to_string());
            ids.push(providers::domestic_phone(&p));
        }
        let code: Option<String> = person
            .try_get::<Option<String>, _>("student_code")?
            .filter(|c| !c.trim().is_empty());
        let known: Vec<&str> = ids.iter().chain(&code).map(String::as_str).collect();
        // No index leads from a person to their deliveries (it would be rewritten at every fan-out
        // insert); an erasure is rare, and a few scans of the deliveries table are acceptable for it.
        sqlx::query(
            "UPDATE deliveries SET state = 'cancelled', reason_code = 'cancelled', reason = 'person erased', \
             lease_until = NULL, updated_at = ?1 WHERE contact_id = ?2 AND state IN ('queued','retrying')",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        // Reasons written before addresses were masked in them, or quoting an id in a form the
        // masking did not know.
        let reasons = sqlx::query(
            "SELECT id, reason FROM deliveries WHERE contact_id = ? AND reason IS NOT NULL",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        for r in reasons {
            let reason: String = r.try_get("reason")?;
            let masked = providers::mask_personal(&reason, &known);
            if masked != reason {
                sqlx::query("UPDATE deliveries SET reason = ? WHERE id = ?")
                    .bind(masked)
                    .bind(r.try_get::<i64, _>("id")?)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        // Provider message ids that would lead a late receipt back to the person's deliveries.
        sqlx::query(
            "DELETE FROM receipt_refs WHERE delivery_id IN (SELECT id FROM deliveries WHERE contact_id = ?)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE deliveries SET contact_id = NULL, vars = '{}' WHERE contact_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        // A student's name is in their parents' deliveries too (the children a message names).
        let parents: Vec<i64> =
            sqlx::query_scalar("SELECT parent_id FROM guardian_links WHERE student_id = ?")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
        for parent in parents {
            let rows = sqlx::query(
                "SELECT id, vars FROM deliveries WHERE contact_id = ? AND instr(vars, ?) > 0",
            )
            .bind(parent)
            .bind(&name)
            .fetch_all(&mut *tx)
            .await?;
            for r in rows {
                let vars: String = r.try_get("vars")?;
                let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&vars) else {
                    continue;
                };
                if let Some(list) = v.get_mut("s").and_then(|s| s.as_array_mut())
                    && let Some(at) = list.iter().position(|n| n.as_str() == Some(name.as_str()))
                {
                    list.remove(at);
                    sqlx::query("UPDATE deliveries SET vars = ? WHERE id = ?")
                        .bind(v.to_string())
                        .bind(r.try_get::<i64, _>("id")?)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        // Webhook events kept after processing name people by their Zalo id or PSID (and may quote
        // what they wrote): the bodies that mention the person are emptied. A pending one is
        // settled as erased; its digest stays, so a replay of it is still a no-op.
        for v in &ids {
            sqlx::query(
                "UPDATE webhook_events SET body = '{}', processed_at = COALESCE(processed_at, ?1), \
                 outcome = COALESCE(outcome, 'erased') WHERE instr(body, ?2) > 0",
            )
            .bind(now)
            .bind(v)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE channel_pauses SET reason = replace(reason, ?1, ?2) WHERE instr(reason, ?1) > 0")
                .bind(v)
                .bind(providers::mask_address(v))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM guardian_links WHERE parent_id = ?1 OR student_id = ?1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query("DELETE FROM contacts WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        // secure_delete zeroed the deleted content in the new pages, but the WAL still holds the
        // pages as they were before: copied into the database and the WAL emptied, nothing of the
        // person is left in either file.
        self.checkpoint_truncate().await;
        Ok(n == 1)
    }

    async fn link_guardian(
        &self,
        parent_id: i64,
        student_id: i64,
        relation: Option<&str>,
    ) -> Result<()> {
        let roles = sqlx::query("SELECT id, role FROM contacts WHERE id IN (?, ?)")
            .bind(parent_id)
            .bind(student_id)
            .fetch_all(&self.writer)
            .await?;
        let role_of = |id: i64| {
            roles
                .iter()
                .find(|r| r.get::<i64, _>("id") == id)
                .map(|r| r.get::<String, _>("role"))
        };
        match role_of(parent_id).as_deref() {
            None => {
                return Err(StoreError::InvalidReference("parent_id".into()));
            }
            Some("parent") => {}
            Some(_) => return Err(StoreError::Invalid("parent_id: not a parent".into())),
        }
        match role_of(student_id).as_deref() {
            None => {
                return Err(StoreError::InvalidReference("student_id".into()));
            }
            Some("student") => {}
            Some(_) => return Err(StoreError::Invalid("student_id: not a student".into())),
        }
        sqlx::query("INSERT INTO guardian_links (parent_id, student_id, relation) VALUES (?, ?, ?) \
                     ON CONFLICT (parent_id, student_id) DO UPDATE SET relation = excluded.relation")
            .bind(parent_id)
            .bind(student_id)
            .bind(relation)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn insert_contacts(&self, rows: &[NewContact], now: Millis) -> Result<Vec<i64>> {
        let mut schools: HashMap<i64, Option<i64>> = HashMap::new();
        for r in rows {
            if let std::collections::hash_map::Entry::Vacant(e) = schools.entry(r.org_id) {
                let org = self
                    .fetch_org(r.org_id)
                    .await
                    .map_err(|_| StoreError::InvalidReference(format!("org_id {}", r.org_id)))?;
                e.insert(match org.kind {
                    OrgKind::School => Some(org.id),
                    OrgKind::Class => org.parent_id,
                    _ => None,
                });
            }
        }
        let mut ids = Vec::with_capacity(rows.len());
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        // 11 parameters a row; 1000 rows stay below SQLite's 32766-parameter limit.
        for chunk in rows.chunks(1000) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO contacts (org_id, school_id, role, full_name, phone, email, zalo_user_id, \
                 facebook_psid, student_code, created_at, updated_at) ",
            );
            qb.push_values(chunk, |mut b, c| {
                b.push_bind(c.org_id)
                    .push_bind(schools.get(&c.org_id).copied().flatten())
                    .push_bind(c.role.as_str())
                    .push_bind(&c.full_name)
                    .push_bind(&c.addresses.phone)
                    .push_bind(&c.addresses.email)
                    .push_bind(&c.addresses.zalo_user_id)
                    .push_bind(&c.addresses.facebook_psid)
                    .push_bind(&c.student_code)
                    .push_bind(now)
                    .push_bind(now);
            });
            qb.push(" RETURNING id");
            for row in qb.build().fetch_all(&mut *tx).await? {
                ids.push(row.try_get(0)?);
            }
        }
        tx.commit().await?;
        Ok(ids)
    }

    async fn link_guardians(&self, pairs: &[(i64, i64)]) -> Result<u64> {
        let mut n = 0;
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        for chunk in pairs.chunks(5000) {
            let json =
                serde_json::to_string(chunk).map_err(|e| StoreError::Invalid(e.to_string()))?;
            n += sqlx::query(
                "INSERT OR IGNORE INTO guardian_links (parent_id, student_id) \
                 SELECT p.id, s.id FROM json_each(?1) j \
                 JOIN contacts p ON p.id = json_extract(j.value, '$[0]') AND p.role = 'parent' \
                 JOIN contacts s ON s.id = json_extract(j.value, '$[1]') AND s.role = 'student'",
            )
            .bind(json)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(n)
    }

    async fn create_template(
        &self,
        t: &NewTemplate,
        created_by: Option<i64>,
        now: Millis,
    ) -> Result<Template> {
        let b = &t.bodies;
        let id: i64 = sqlx::query(
            "INSERT INTO templates (org_id, name, email_subject, email_text, email_html, sms_text, zalo_text, messenger_text, zns, zalo_transaction, created_at, created_by) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(t.org_id)
        .bind(t.name.trim())
        .bind(&b.email_subject)
        .bind(&b.email_text)
        .bind(&b.email_html)
        .bind(&b.sms_text)
        .bind(&b.zalo_text)
        .bind(&b.messenger_text)
        .bind(b.zns.as_ref().and_then(|z| serde_json::to_string(z).ok()))
        .bind(
            b.zalo_transaction
                .as_ref()
                .and_then(|z| serde_json::to_string(z).ok()),
        )
        .bind(now)
        .bind(created_by)
        .written_row(&self.writer)
        .await?
        .try_get(0)?;
        self.get_template(id).await
    }

    async fn get_template(&self, id: i64) -> Result<Template> {
        let r = sqlx::query("SELECT * FROM templates WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.writer)
            .await?
            .ok_or(StoreError::NotFound("template"))?;
        template_from(&r)
    }

    async fn create_campaign(
        &self,
        c: &NewCampaign,
        created_by: Option<i64>,
        now: Millis,
    ) -> Result<Campaign> {
        let audience =
            serde_json::to_string(&c.audience).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let channels =
            serde_json::to_string(&c.channels).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let row = sqlx::query(&format!(
            "INSERT INTO campaigns (org_id, name, template_id, audience, channels, messenger_tag, state, send_at, created_at, updated_at, created_by, \
             schedule, series, urgent) \
             VALUES (?, ?, ?, ?, ?, ?, 'draft', ?, ?, ?, ?, ?, ?, ?) RETURNING {CAMPAIGN_COLS}"
        ))
        .bind(c.org_id)
        .bind(&c.name)
        .bind(c.template_id)
        .bind(audience)
        .bind(channels)
        .bind(&c.messenger_tag)
        .bind(c.send_at)
        .bind(now)
        .bind(now)
        .bind(created_by)
        .bind(c.recurrence.as_ref().and_then(|r| serde_json::to_string(r).ok()))
        .bind((!c.series.is_empty()).then(|| json_ids(&c.series)))
        .bind(c.urgent)
        .written_row(&self.writer)
        .await?;
        campaign_from(&row)
    }

    async fn get_campaign(&self, id: i64) -> Result<Campaign> {
        let row = sqlx::query(&format!(
            "SELECT {CAMPAIGN_COLS} FROM campaigns WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.writer)
        .await?
        .ok_or(StoreError::NotFound("campaign"))?;
        campaign_from(&row)
    }

    async fn list_campaigns(&self, org_path: &str, org_id: Option<i64>) -> Result<Vec<Campaign>> {
        let rows = sqlx::query(&format!(
            "SELECT {CAMPAIGN_COLS} FROM campaigns WHERE (?1 IS NULL OR org_id = ?1) \
             AND org_id IN (SELECT id FROM orgs WHERE path LIKE ?2 || '%') ORDER BY id DESC LIMIT 500"
        ))
        .bind(org_id)
        .bind(org_path)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(campaign_from).collect()
    }

    async fn transition_campaign(
        &self,
        id: i64,
        from: &[CampaignState],
        to: CampaignState,
        now: Millis,
    ) -> Result<bool> {
        let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        let n = sqlx::query(
            "UPDATE campaigns SET state = ?1, updated_at = ?2 WHERE id = ?3 AND state IN (SELECT value FROM json_each(?4))",
        )
        .bind(to.as_str())
        .bind(now)
        .bind(id)
        .bind(serde_json::to_string(&from).unwrap_or_default())
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn start_recurring(&self, id: i64, now: Millis) -> Result<bool> {
        self.do_start_recurring(id, now).await
    }
    async fn recurring_campaigns(&self) -> Result<Vec<Campaign>> {
        self.do_recurring_campaigns().await
    }
    async fn create_slot_run(
        &self,
        campaign_id: i64,
        slot: &str,
        slot_at: Millis,
        run: &SlotRun,
        now: Millis,
    ) -> Result<bool> {
        self.do_create_slot_run(campaign_id, slot, slot_at, run, now)
            .await
    }
    async fn halted_runs(&self, run_ids: &[i64]) -> Result<Vec<i64>> {
        let rows = sqlx::query(
            "SELECT id FROM runs WHERE id IN (SELECT value FROM json_each(?)) \
             AND (paused = 1 OR state NOT IN ('pending','running'))",
        )
        .bind(json_ids(run_ids))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }
    async fn audience(
        &self,
        c: &Campaign,
        f: &mut (dyn FnMut(AudiencePerson) + Send),
    ) -> Result<()> {
        use futures::TryStreamExt;
        let root = self.fetch_org(c.audience.org_id).await?;
        let classes = json_ids(&c.audience.class_ids);
        // A large subtree is read in guardian-link order (no sort), as the fan-out does.
        let scan = c.audience.roles.contains(&Role::Parent) && {
            let students: i64 = sqlx::query(fanout::STUDENTS_CAPPED)
                .bind(&root.path)
                .bind(&classes)
                .bind(SCAN_PLAN_FROM_STUDENTS)
                .fetch_one(&self.reader)
                .await?
                .try_get(0)?;
            students >= SCAN_PLAN_FROM_STUDENTS
        };
        for (sql, role) in fanout::preview_queries(&c.audience.roles, scan) {
            let q = sqlx::query(&sql).bind(&root.path).bind(&classes);
            let q = match role {
                Some(r) => q.bind(r),
                None if scan => q.bind(0i64).bind(i64::MAX),
                None => q,
            };
            let mut rows = q.fetch(&self.reader);
            while let Some(r) = rows.try_next().await? {
                let list = |col: &str| -> Result<Vec<String>> {
                    let j: Option<String> = r.try_get(col)?;
                    Ok(j.and_then(|j| serde_json::from_str(&j).ok())
                        .unwrap_or_default())
                };
                f(AudiencePerson {
                    addresses: addresses_from(&r)?,
                    opt_out: OptOuts(r.try_get("opt_out")?),
                    name: r.try_get("name")?,
                    students: list("students")?,
                    classes: list("classes")?,
                    org_id: r.try_get("attr")?,
                });
            }
        }
        Ok(())
    }
    async fn set_paused(
        &self,
        campaign_id: i64,
        run_id: Option<i64>,
        paused: bool,
        now: Millis,
    ) -> Result<bool> {
        self.do_set_paused(campaign_id, run_id, paused, now).await
    }
    async fn cancel_run(&self, campaign_id: i64, run_id: i64, now: Millis) -> Result<Option<u64>> {
        self.do_cancel_run(campaign_id, run_id, now).await
    }
    async fn runs_taken(&self, campaign_id: i64) -> Result<i64> {
        self.do_runs_taken(campaign_id).await
    }
    async fn advance_cursor(&self, campaign_id: i64, slot: Millis) -> Result<()> {
        self.do_advance_cursor(campaign_id, slot).await
    }
    async fn end_schedule(&self, campaign_id: i64, now: Millis) -> Result<()> {
        self.do_end_schedule(campaign_id, now).await
    }
    async fn run_template(&self, run_id: i64) -> Result<Option<i64>> {
        self.do_run_template(run_id).await
    }
    async fn list_runs(&self, campaign_id: i64) -> Result<Vec<RunRow>> {
        self.do_list_runs(campaign_id).await
    }
    async fn set_calendar(&self, org_id: i64, c: Option<&Calendar>) -> Result<()> {
        self.do_set_calendar(org_id, c).await
    }
    async fn effective_calendar(&self, org_id: i64) -> Result<(Option<i64>, Calendar)> {
        self.do_effective_calendar(org_id).await
    }
    async fn set_quiet_hours(&self, org_id: i64, q: Option<&str>) -> Result<()> {
        self.do_set_quiet_hours(org_id, q).await
    }
    async fn effective_quiet_hours(&self, org_id: i64) -> Result<Option<String>> {
        self.do_effective_quiet_hours(org_id).await
    }

    async fn due_campaigns(&self, now: Millis) -> Result<Vec<i64>> {
        let rows = sqlx::query(
            "SELECT id FROM campaigns WHERE state = 'scheduled' AND paused = 0 AND schedule IS NULL AND COALESCE(send_at, 0) <= ?",
        )
        .bind(now)
        .fetch_all(&self.writer)
        .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    async fn cancel_campaign(&self, id: i64, now: Millis) -> Result<u64> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let moved = sqlx::query(
            "UPDATE campaigns SET state = 'cancelled', updated_at = ?1 WHERE id = ?2 \
             AND state IN ('draft','submitted','rejected','approved','scheduled','running')",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved == 0 {
            return Err(StoreError::Invalid(
                "campaign cannot be cancelled in its current state".into(),
            ));
        }
        sqlx::query("UPDATE runs SET state = 'cancelled', finished_at = ?1 WHERE campaign_id = ?2 AND state IN ('pending','running')")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query(
            "UPDATE deliveries SET state = 'cancelled', reason_code = 'cancelled', updated_at = ?1 \
             WHERE campaign_id = ?2 AND state IN ('queued','retrying')",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    async fn create_run(&self, campaign_id: i64, slot: &str, now: Millis) -> Result<i64> {
        // A run of a paused campaign starts paused.
        sqlx::query(
            "INSERT INTO runs (campaign_id, slot, state, created_at, paused) \
             VALUES (?1, ?2, 'pending', ?3, COALESCE((SELECT paused FROM campaigns WHERE id = ?1), 0)) ON CONFLICT DO NOTHING",
        )
            .bind(campaign_id)
            .bind(slot)
            .bind(now)
            .execute(&self.writer)
            .await?;
        Ok(
            sqlx::query("SELECT id FROM runs WHERE campaign_id = ? AND slot = ?")
                .bind(campaign_id)
                .bind(slot)
                .fetch_one(&self.writer)
                .await?
                .try_get(0)?,
        )
    }

    async fn pending_runs(&self) -> Result<Vec<(i64, i64)>> {
        let rows = sqlx::query(
            "SELECT id, campaign_id FROM runs WHERE state = 'pending' AND paused = 0 ORDER BY id",
        )
        .fetch_all(&self.writer)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    async fn mark_run_fanned_out(&self, run_id: i64) -> Result<()> {
        sqlx::query("UPDATE runs SET state = 'running' WHERE id = ? AND state = 'pending'")
            .bind(run_id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn fan_out_step(
        &self,
        run_id: i64,
        c: &Campaign,
        step: FanOutStep,
        now: Millis,
    ) -> Result<(u64, FanOutStep)> {
        let a = &c.audience;
        let root = self.fetch_org(a.org_id).await?;
        let classes = serde_json::to_string(&a.class_ids).unwrap_or_else(|_| "[]".into());
        let insert = |people: &str| fanout::insert(run_id, c.id, &c.channels, people);
        // Every statement binds ?1 to ?5 (path, classes, two per-query values, time), so one shape fits all.
        let run = async |sql: String, p3: Option<i64>, role: Option<&str>, p4: Option<i64>| {
            let q = sqlx::query(&sql).bind(&root.path).bind(&classes);
            let q = match role {
                Some(role) => q.bind(role),
                None => q.bind(p3),
            };
            let done = q.bind(p4).bind(now).execute(&self.writer).await?;
            Ok::<u64, StoreError>(done.rows_affected())
        };
        Ok(match step {
            FanOutStep::Start if a.roles.contains(&Role::Parent) => {
                let students: i64 = sqlx::query(fanout::STUDENTS_CAPPED)
                    .bind(&root.path)
                    .bind(&classes)
                    .bind(SCAN_PLAN_FROM_STUDENTS)
                    .fetch_one(&self.reader)
                    .await?
                    .try_get(0)?;
                if students >= SCAN_PLAN_FROM_STUDENTS {
                    (0, FanOutStep::ParentsAfter(0))
                } else {
                    let n = run(insert(&fanout::parents_sorted()), None, None, None).await?;
                    (n, FanOutStep::Direct(0))
                }
            }
            FanOutStep::Start => (0, FanOutStep::Direct(0)),
            FanOutStep::ParentsAfter(after) => {
                let end: Option<i64> = sqlx::query(fanout::PAGE_END)
                    .bind(after)
                    .bind(SCAN_PAGE_LINKS - 1)
                    .fetch_optional(&self.writer)
                    .await?
                    .map(|r| r.try_get(0))
                    .transpose()?;
                // A bound on both sides, so the walk stops at the page's end.
                let upto = Some(end.unwrap_or(i64::MAX));
                let n = run(insert(&fanout::parents_page()), Some(after), None, upto).await?;
                (
                    n,
                    end.map_or(FanOutStep::Direct(0), FanOutStep::ParentsAfter),
                )
            }
            FanOutStep::Direct(i) => match direct_roles(a).get(i) {
                Some(role) => {
                    // Parents come after the pass through their children, which this one relies on.
                    let n = run(
                        insert(&fanout::direct_unreached()),
                        None,
                        Some(role),
                        Some(run_id),
                    )
                    .await?;
                    (n, FanOutStep::Direct(i + 1))
                }
                None => (0, FanOutStep::Done),
            },
            FanOutStep::Done => (0, FanOutStep::Done),
        })
    }

    async fn reopen_run(&self, run_id: i64, now: Millis) -> Result<()> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let reopened = sqlx::query("UPDATE runs SET state = 'running', finished_at = NULL WHERE id = ? AND state = 'done' RETURNING campaign_id")
            .bind(run_id)
            .written_opt(&mut *tx)
            .await?;
        if let Some(row) = reopened {
            sqlx::query("UPDATE campaigns SET state = 'running', updated_at = ? WHERE id = ? AND state = 'done'")
                .bind(now)
                .bind(row.try_get::<i64, _>(0)?)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn finish_runs(&self, now: Millis) -> Result<Vec<i64>> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        // Deliveries of a cancelled run whose sender died mid-send end cancelled, not stuck in sending.
        sqlx::query(concat!(
            "UPDATE deliveries AS d SET state = 'cancelled', reason_code = 'cancelled', lease_until = NULL, updated_at = ?1 \
             WHERE state = 'sending' AND lease_until <= ?1 AND run_id IN (SELECT id FROM runs WHERE state = 'cancelled') AND ",
            holder_gone!("?1", "?2")
        ))
        .bind(now)
        .bind(&self.owner)
        .execute(&mut *tx)
        .await?;
        let rows = sqlx::query(
            "UPDATE runs SET state = 'done', finished_at = ?1 WHERE state = 'running' AND NOT EXISTS \
             (SELECT 1 FROM deliveries d INDEXED BY deliveries_due WHERE d.run_id = runs.id AND d.state IN ('queued','retrying')) \
             AND NOT EXISTS (SELECT 1 FROM deliveries d INDEXED BY deliveries_leased WHERE d.state = 'sending' AND d.run_id = runs.id) \
             RETURNING campaign_id",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        let mut done = Vec::new();
        for r in rows {
            let cid: i64 = r.try_get(0)?;
            // A recurring campaign waits for its next slot; any other is done.
            let state: Option<String> = sqlx::query(SETTLE_CAMPAIGN)
                .bind(now)
                .bind(cid)
                .written_opt(&mut *tx)
                .await?
                .map(|r| r.try_get(0))
                .transpose()?;
            if state.as_deref() == Some("done") {
                done.push(cid);
            }
        }
        tx.commit().await?;
        Ok(done)
    }

    async fn claim(
        &self,
        limit: i64,
        now: Millis,
        lease_until: Millis,
        skip: &[Channel],
    ) -> Result<Vec<Claimed>> {
        let skip: Vec<&str> = skip.iter().map(|c| c.as_str()).collect();
        let skip = serde_json::to_string(&skip).unwrap_or_else(|_| "[]".into());
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let mut claimed: Vec<Claimed> = Vec::new();
        for sql in CLAIM_STATEMENTS.iter() {
            let want = limit - claimed.len() as i64;
            if want <= 0 {
                break;
            }
            let rows = sqlx::query(sql)
                .bind(lease_until)
                .bind(now)
                .bind(&skip)
                .bind(want)
                .bind(&self.owner)
                .fetch_all(&mut *tx)
                .await?;
            for r in &rows {
                claimed.push(claimed_from(r)?);
            }
        }
        tx.commit().await?;
        Ok(claimed)
    }

    async fn release(&self, ids: &[i64], at: Millis) -> Result<()> {
        sqlx::query(
            "UPDATE deliveries SET \
               state = CASE WHEN run_id IN (SELECT id FROM runs WHERE state = 'cancelled') THEN 'cancelled' \
                            WHEN attempts = 0 THEN 'queued' ELSE 'retrying' END, \
               reason_code = CASE WHEN run_id IN (SELECT id FROM runs WHERE state = 'cancelled') THEN 'cancelled' \
                                  ELSE reason_code END, \
               lease_until = NULL, next_attempt_at = ?1 WHERE state = 'sending' AND id IN (SELECT value FROM json_each(?2))",
        )
        .bind(at)
        .bind(json_ids(ids))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn record(&self, updates: &[DeliveryUpdate], now: Millis) -> Result<u64> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let mut n = 0;
        // Up to 128 outcomes per statement: each statement is a round trip to SQLite's worker thread,
        // which costs more than the update itself. A statement's row count is rounded up to a multiple
        // of 8 with rows that match nothing (id NULL), so only 16 texts ever exist and each is parsed
        // and planned once; a text per batch length was parsed again for most batches (7 % of all
        // instructions of a run). 12 parameters a row.
        for chunk in updates.chunks(128) {
            let padded = chunk.len().div_ceil(8) * 8;
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                "WITH v(id, expected, state, channel, channel_index, attempts, next_attempt_at, provider_message_id, \
                 segments, reason_code, reason, sent_at) AS (",
            );
            qb.push_values(
                chunk
                    .iter()
                    .map(Some)
                    .chain(std::iter::repeat_n(None, padded - chunk.len())),
                |mut b, u: Option<&DeliveryUpdate>| {
                    b.push_bind(u.map(|u| u.id))
                        .push_bind(u.map(|u| u.expected.as_str()))
                        .push_bind(u.map(|u| u.state.as_str()))
                        .push_bind(u.and_then(|u| u.channel.map(|c| c.as_str())))
                        .push_bind(u.map(|u| u.channel_index))
                        .push_bind(u.map(|u| u.attempts))
                        .push_bind(u.map(|u| u.next_attempt_at))
                        .push_bind(u.and_then(|u| u.provider_message_id.as_deref()))
                        .push_bind(u.and_then(|u| u.segments))
                        .push_bind(u.and_then(|u| u.reason_code.map(|r| r.as_str())))
                        .push_bind(u.and_then(|u| u.reason.as_deref()))
                        .push_bind(u.and_then(|u| u.sent_at));
                },
            );
            qb.push(
                ") UPDATE deliveries SET state = v.state, channel = v.channel, channel_index = v.channel_index, \
                 attempts = v.attempts, next_attempt_at = v.next_attempt_at, lease_until = NULL, \
                 provider_message_id = v.provider_message_id, segments = v.segments, reason_code = v.reason_code, \
                 reason = v.reason, sent_at = CASE WHEN v.state IN ('sent','delivered') THEN COALESCE(v.sent_at, ",
            );
            qb.push_bind(now);
            qb.push(") ELSE deliveries.sent_at END, updated_at = ");
            qb.push_bind(now);
            qb.push(" FROM v WHERE deliveries.id = v.id AND deliveries.state = v.expected");
            n += qb
                .build()
                .persistent(true)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        // Receipts that will name a message only by the provider's id need a way back to the delivery.
        let refs: Vec<(&str, &str, i64)> = updates
            .iter()
            .filter(|u| u.receipt_by_provider_id)
            .filter_map(|u| Some((u.channel?.as_str(), u.provider_message_id.as_deref()?, u.id)))
            .collect();
        for chunk in refs.chunks(300) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT OR REPLACE INTO receipt_refs (channel, ref, delivery_id) ",
            );
            qb.push_values(chunk, |mut b, (c, r, id)| {
                b.push_bind(*c).push_bind(*r).push_bind(*id);
            });
            qb.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(n)
    }

    fn instance_id(&self) -> &str {
        &self.owner
    }

    async fn heartbeat(&self, now: Millis, alive_until: Millis) -> Result<()> {
        sqlx::query(
            "INSERT INTO instances (id, started_at, alive_until) VALUES (?1, ?2, ?3) \
             ON CONFLICT (id) DO UPDATE SET alive_until = excluded.alive_until",
        )
        .bind(&self.owner)
        .bind(now)
        .bind(alive_until)
        .execute(&self.writer)
        .await?;
        // Rows of processes gone for a day are of no use to anyone.
        sqlx::query("DELETE FROM instances WHERE alive_until < ?")
            .bind(now - 86_400_000)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn retire(&self) -> Result<()> {
        sqlx::query("DELETE FROM instances WHERE id = ?")
            .bind(&self.owner)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn next_due_at(&self) -> Result<Option<Millis>> {
        // Per claimable run: the due index leads with the run, so a global minimum would read all of it.
        let due: Option<i64> = sqlx::query(&format!(
            "SELECT min(due) FROM (SELECT (SELECT min(d.next_attempt_at) FROM deliveries d INDEXED BY deliveries_due \
               WHERE d.run_id = r.id AND d.state IN ('queued','retrying')) AS due \
               FROM runs r WHERE {CLAIMABLE_RUN} \
             UNION ALL SELECT min(max(d.lease_until, COALESCE((SELECT i.alive_until FROM instances i \
               WHERE i.id = d.lease_owner), 0))) FROM deliveries d INDEXED BY deliveries_leased \
               WHERE d.state = 'sending' AND COALESCE(d.lease_owner, '') <> ?1)"
        ))
        .bind(&self.owner)
        .fetch_one(&self.reader)
        .await?
        .try_get(0)?;
        Ok(due)
    }

    async fn load_for_receipt(&self, id: i64, at: Option<AttemptRef>) -> Result<Option<Claimed>> {
        let row = sqlx::query(&format!(
            "SELECT {CLAIMED_COLUMNS} FROM deliveries WHERE id = ?1 AND state IN ('sending','sent') AND {ON_ATTEMPT}"
        ))
        .bind(id)
        .bind(at.map(|a| a.channel_index))
        .bind(at.map(|a| a.attempt))
        .fetch_optional(&self.writer)
        .await?;
        row.as_ref().map(claimed_from).transpose()
    }

    async fn apply_receipt(
        &self,
        id: i64,
        at: Option<AttemptRef>,
        r: Receipt,
        now: Millis,
    ) -> Result<bool> {
        let (to, from) = match r {
            Receipt::Delivered => ("delivered", "('sending','sent')"),
            Receipt::Read => ("read", "('sending','sent','delivered')"),
        };
        let n = sqlx::query(&format!(
            "UPDATE deliveries SET state = ?4, lease_until = NULL, updated_at = ?5 WHERE id = ?1 AND state IN {from} AND {ON_ATTEMPT}"
        ))
        .bind(id)
        .bind(at.map(|a| a.channel_index))
        .bind(at.map(|a| a.attempt))
        .bind(to)
        .bind(now)
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn progress(&self, campaign_id: i64) -> Result<Progress> {
        // One connection for the three reads: a consistent picture, and one pool checkout.
        let mut conn = self.reader.acquire().await?;
        let rows = sqlx::query(
            "SELECT COALESCE(channel, 'none') AS channel, state, reason_code, count(*) AS n FROM deliveries \
             WHERE campaign_id = ? GROUP BY 1, 2, 3",
        )
        .bind(campaign_id)
        .fetch_all(&mut *conn)
        .await?;
        let mut p = Progress::default();
        for r in rows {
            let channel: String = r.try_get("channel")?;
            let state: String = r.try_get("state")?;
            let reason: Option<String> = r.try_get("reason_code")?;
            let n: i64 = r.try_get("n")?;
            p.total += n;
            if state == "failed" {
                let code = reason.clone().unwrap_or_else(|| "unknown".into());
                *p.failed_by_channel
                    .entry(channel.clone())
                    .or_default()
                    .entry(code)
                    .or_default() += n;
            }
            *p.by_state.entry(state.clone()).or_default() += n;
            *p.by_channel
                .entry(channel)
                .or_default()
                .entry(state)
                .or_default() += n;
            if let Some(reason) = reason {
                *p.by_reason.entry(reason).or_default() += n;
            }
        }
        p.fell_back = Self::fell_back(&mut conn, campaign_id).await?;
        p.paused = Self::channel_pauses(&mut conn, campaign_id).await?;
        Ok(p)
    }

    async fn list_deliveries(
        &self,
        campaign_id: i64,
        f: &DeliveryFilter,
    ) -> Result<Vec<DeliveryRow>> {
        let rows = sqlx::query(
            "SELECT d.id, d.contact_id, c.full_name, c.role, d.org_id, d.channel, d.state, d.attempts, d.segments, \
                    d.reason_code, d.reason, d.updated_at, c.phone, c.email, c.zalo_user_id, c.facebook_psid \
             FROM deliveries d LEFT JOIN contacts c ON c.id = d.contact_id \
             WHERE d.campaign_id = ?1 AND (?2 IS NULL OR d.state = ?2) AND (?3 IS NULL OR d.channel = ?3) AND d.id > ?4 \
             ORDER BY d.id LIMIT ?5",
        )
        .bind(campaign_id)
        .bind(f.state.map(|s| s.as_str()))
        .bind(f.channel.map(|c| c.as_str()))
        .bind(f.after_id.unwrap_or(0))
        .bind(f.limit)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                let channel = channel_col(r, "channel")?;
                let addresses = addresses_from(r)?;
                Ok(DeliveryRow {
                    id: r.try_get("id")?,
                    contact_id: r.try_get("contact_id")?,
                    full_name: r.try_get("full_name")?,
                    role: r.try_get("role")?,
                    org_id: r.try_get("org_id")?,
                    channel: channel.map(|c| c.as_str().to_string()),
                    to: channel.and_then(|c| addresses.for_channel(c).map(providers::mask_address)),
                    state: r.try_get("state")?,
                    attempts: r.try_get("attempts")?,
                    segments: r.try_get("segments")?,
                    reason_code: r.try_get("reason_code")?,
                    reason: r.try_get("reason")?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect()
    }

    async fn summary_by_org(&self, campaign_ids: &[i64]) -> Result<Vec<SummaryRow>> {
        let rows = sqlx::query(
            "SELECT d.org_id, o.name, d.channel, d.state, d.reason_code, count(*) AS n \
             FROM deliveries d JOIN orgs o ON o.id = d.org_id \
             WHERE d.campaign_id IN (SELECT value FROM json_each(?)) GROUP BY 1, 2, 3, 4, 5 ORDER BY o.path",
        )
        .bind(json_ids(campaign_ids))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SummaryRow {
                    org_id: r.try_get("org_id")?,
                    org_name: r.try_get("name")?,
                    channel: r.try_get("channel")?,
                    state: r.try_get("state")?,
                    reason_code: r.try_get("reason_code")?,
                    count: r.try_get("n")?,
                })
            })
            .collect()
    }

    async fn unsettled_count(&self, campaign_ids: &[i64]) -> Result<i64> {
        Ok(sqlx::query(
            "SELECT count(*) FROM deliveries WHERE campaign_id IN (SELECT value FROM json_each(?)) \
             AND state IN ('queued','sending','retrying')",
        )
        .bind(json_ids(campaign_ids))
        .fetch_one(&self.reader)
        .await?
        .try_get(0)?)
    }

    async fn zalo_token(&self, app_id: &str) -> Result<Option<TokenPair>> {
        let row = sqlx::query(
            "SELECT access_token, refresh_token, expires_at FROM zalo_tokens WHERE app_id = ?",
        )
        .bind(app_id)
        .fetch_optional(&self.writer)
        .await?;
        row.map(|r| {
            Ok(TokenPair {
                access_token: r.try_get(0)?,
                refresh_token: r.try_get(1)?,
                expires_at_ms: r.try_get(2)?,
            })
        })
        .transpose()
    }

    async fn seed_zalo_token(&self, app_id: &str, p: &TokenPair, now: Millis) -> Result<()> {
        self.put_zalo_token(app_id, p, now, false).await
    }

    async fn set_zalo_token(&self, app_id: &str, p: &TokenPair, now: Millis) -> Result<()> {
        self.put_zalo_token(app_id, p, now, true).await
    }

    async fn replace_zalo_token(
        &self,
        app_id: &str,
        old_refresh: &str,
        p: &TokenPair,
        now: Millis,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE zalo_tokens SET access_token = ?1, refresh_token = ?2, expires_at = ?3, updated_at = ?4 \
             WHERE app_id = ?5 AND refresh_token = ?6",
        )
        .bind(&p.access_token)
        .bind(&p.refresh_token)
        .bind(p.expires_at_ms)
        .bind(now)
        .bind(app_id)
        .bind(old_refresh)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn import_roster(
        &self,
        school_id: i64,
        pieces: &mut tokio::sync::mpsc::Receiver<Vec<crate::domain::roster::RosterEntry>>,
        now: Millis,
        mode: crate::store::ImportMode,
        progress: &mut (dyn FnMut(usize) + Send),
    ) -> Result<ImportCounts> {
        self.do_import_roster(school_id, pieces, now, mode, progress)
            .await
    }

    async fn import_staff(
        &self,
        org_id: i64,
        entries: &[crate::domain::roster::StaffEntry],
        now: Millis,
        mode: crate::store::ImportMode,
    ) -> Result<ImportCounts> {
        self.do_import_staff(org_id, entries, now, mode).await
    }

    async fn seed_synthetic(&self, s: &SyntheticAudience, now: Millis) -> Result<()> {
        self.do_seed_synthetic(s, now).await
    }

    async fn pause_channel(
        &self,
        campaign_id: i64,
        channel: Channel,
        reason: &str,
        now: Millis,
    ) -> Result<bool> {
        self.do_pause_channel(campaign_id, channel, reason, now)
            .await
    }
    async fn resume_channel(&self, campaign_id: i64, channel: Channel) -> Result<bool> {
        self.do_resume_channel(campaign_id, channel).await
    }
    async fn skip_channel(&self, campaign_id: i64, channel: Channel) -> Result<bool> {
        self.do_skip_channel(campaign_id, channel).await
    }
    async fn delivery_by_ref(&self, channel: Channel, provider_ref: &str) -> Result<Option<i64>> {
        self.do_delivery_by_ref(channel, provider_ref).await
    }
    async fn apply_watermark(
        &self,
        channel: Channel,
        address: &str,
        watermark: Millis,
        r: Receipt,
        now: Millis,
    ) -> Result<u64> {
        self.do_apply_watermark(channel, address, watermark, r, now)
            .await
    }
    async fn set_zalo_following(&self, user_id: &str, following: bool, now: Millis) -> Result<u64> {
        self.do_set_zalo_following(user_id, following, now).await
    }
    async fn insert_webhook_event(
        &self,
        provider: &str,
        digest: &str,
        body: &str,
        now: Millis,
    ) -> Result<bool> {
        self.do_insert_webhook_event(provider, digest, body, now)
            .await
    }
    async fn pending_webhook_events(&self, limit: i64) -> Result<Vec<WebhookEvent>> {
        self.do_pending_webhook_events(limit).await
    }
    async fn finish_webhook_event(
        &self,
        id: i64,
        outcome: EventOutcome,
        now: Millis,
    ) -> Result<()> {
        self.do_finish_webhook_event(id, outcome, now).await
    }
    async fn webhook_counts(&self) -> Result<BTreeMap<String, BTreeMap<String, i64>>> {
        self.do_webhook_counts().await
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
