//! PostgreSQL implementation of `Store`: the shared store when several instances run. One pool;
//! the claim takes rows with `FOR UPDATE SKIP LOCKED`, so instances never wait on each other's work.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow, PgSslMode};
use sqlx::{PgPool, Postgres, Row};

use super::rows::{
    CAMPAIGN_COLS, CONTACT_COLS, ORG_COLS, PackedContact, USER_COLS, corrupt, row_readers,
};
use super::*;
use crate::domain::campaign::{Approval, Publication, TemplateBodies};
use crate::domain::contact::{ContactDetails, Role};
use crate::domain::delivery::AttemptRef;
use crate::domain::org::OrgKind;

row_readers!(PgRow);

/// The schema's migrations, embedded once: `migrate` applies them, `readiness` compares with the newest.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Connections per instance. The dispatcher's claim and its batched outcome writes take one each;
/// the API, the scheduler and webhooks share the rest.
const POOL_SIZE: u32 = 12;

pub struct PgStore {
    pool: PgPool,
    /// This process, as the holder of the leases it claims (one store handle per process).
    owner: String,
    /// The LISTEN/NOTIFY channel instances of this database announce work on: named after the
    /// schema, as channels are per database and two installations may share one in two schemas.
    work_channel: String,
}

impl PgStore {
    /// Connects to a `postgres://` URL. TLS follows the URL's `sslmode` (`require`, `verify-full`
    /// with `sslrootcert=/path/ca.pem`); a schema other than `public` is chosen with
    /// `options[search_path]=name` (the tests give each test its own).
    pub async fn open(url: &str, password: Option<&str>) -> Result<Self> {
        let mut opts = PgConnectOptions::from_str(url)?
            .application_name("loa")
            .statement_cache_capacity(256);
        if plaintext_by_default(url, &opts) {
            opts = opts.ssl_mode(PgSslMode::Disable);
        }
        if let Some(p) = password {
            opts = opts.password(p);
        }
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await?;
        let schema: String = sqlx::query_scalar("SELECT current_schema()::text")
            .fetch_one(&pool)
            .await?;
        Ok(PgStore {
            pool,
            owner: super::new_instance_id(),
            work_channel: format!("loa_work_{schema}"),
        })
    }

    /// Listens on the work channel and wakes `wake` for each announcement another instance makes
    /// (its own are ignored: this process woke its dispatcher already). Returns on an error.
    async fn listen(&self, wake: &tokio::sync::Notify) -> Result<()> {
        let mut l = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
        l.listen(&self.work_channel).await?;
        loop {
            let n = l.recv().await?;
            if n.payload() != self.owner {
                wake.notify_one();
            }
        }
    }

    async fn fetch_org(&self, id: i64) -> Result<Org> {
        let row = sqlx::query(&format!("SELECT {ORG_COLS} FROM orgs WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("organisation"))?;
        org_from(&row)
    }
}

/// Whether to connect without TLS although the URL did not ask for that: only when it names no
/// `sslmode` (nor does `PGSSLMODE`) and the server is on this machine (a loopback address,
/// `localhost` or a Unix socket). Without an `sslmode` sqlx prefers TLS, and on loopback that only
/// cost CPU on both ends of every round trip (the traffic never leaves the host, and `prefer`
/// checks no certificate anyway). Any other host keeps sqlx's default, and an explicit `sslmode`
/// (`require`, `verify-full`, even `prefer`) is always obeyed.
fn plaintext_by_default(url: &str, opts: &PgConnectOptions) -> bool {
    let named = reqwest::Url::parse(url).is_ok_and(|u| {
        u.query_pairs()
            .any(|(k, _)| k == "sslmode" || k == "ssl-mode")
    });
    if named || std::env::var_os("PGSSLMODE").is_some() {
        return false;
    }
    if opts.get_socket().is_some() {
        return true;
    }
    let host = opts
        .get_host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A write's `RETURNING` rows, read to the statement's end (`fetch_all`): `fetch_one` and
/// `fetch_optional` stop at the first row, and an error after it (the commit of an autocommit
/// statement) would be lost while the caller kept the row. Every write with `RETURNING` reads
/// its row through here (or `fetch_all`), as on SQLite.
trait Written<'q> {
    fn written_opt<'e, 'c: 'e, E>(self, e: E) -> BoxFuture<'e, Result<Option<PgRow>>>
    where
        'q: 'e,
        E: 'e + sqlx::Executor<'c, Database = Postgres>;

    fn written_row<'e, 'c: 'e, E>(self, e: E) -> BoxFuture<'e, Result<PgRow>>
    where
        'q: 'e,
        E: 'e + sqlx::Executor<'c, Database = Postgres>,
        Self: Sized + Send + 'e,
    {
        let opt = self.written_opt(e);
        Box::pin(async move { opt.await?.ok_or(StoreError::NotFound("row")) })
    }
}

impl<'q> Written<'q> for sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    fn written_opt<'e, 'c: 'e, E>(self, e: E) -> BoxFuture<'e, Result<Option<PgRow>>>
    where
        'q: 'e,
        E: 'e + sqlx::Executor<'c, Database = Postgres>,
    {
        Box::pin(async move { Ok(self.fetch_all(e).await?.into_iter().next()) })
    }
}

/// A delivery as the dispatcher handles it, with the person's addresses (a Zalo user id only while
/// they follow the OA) and whether staff chose to skip its channel for the campaign: the SQLite
/// store's `CLAIMED_COLUMNS` in this dialect, read by position in `claimed_from`. Columns of
/// `deliveries`, unqualified, so the same list serves a claim's `RETURNING` and a plain SELECT.
const CLAIMED_COLUMNS: &str = "id, run_id, campaign_id, contact_id, channel, channel_index, attempts, state, reason, vars, \
     (SELECT json_build_array(c.phone, c.email, CASE WHEN c.zalo_following THEN c.zalo_user_id END, \
        c.facebook_psid, c.opt_out)::text FROM contacts c WHERE c.id = deliveries.contact_id), \
     EXISTS (SELECT 1 FROM channel_pauses p WHERE p.campaign_id = deliveries.campaign_id \
       AND p.channel = deliveries.channel AND p.skip)";

/// A delivery still on the attempt a report names ($2 channel index, $3 attempt; both NULL: any).
/// The attempt counter moves when the outcome is recorded, so while the send is in flight the row
/// still shows the attempt before it.
const ON_ATTEMPT: &str = "($2::BIGINT IS NULL OR (channel_index = $2 AND (attempts = $3 OR (state = 'sending' AND attempts = $3 - 1))))";

#[async_trait::async_trait]
impl Store for PgStore {
    async fn readiness(&self) -> Result<()> {
        let head = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
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
        // sqlx holds a PostgreSQL advisory lock while it migrates: instances starting together
        // take turns, and the later ones find the work done.
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn live_instances(&self, now: Millis) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM instances WHERE alive_until > $1")
                .bind(now)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn announce_work(&self) -> Result<()> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(&self.work_channel)
            .bind(&self.owner)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn watch_work(&self, wake: std::sync::Arc<tokio::sync::Notify>) {
        loop {
            match self.listen(&wake).await {
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "listening for other instances' work failed; polling until it works again")
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(sqlx::query("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?)
    }
}

mod areas;

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(url: &str) -> bool {
        let opts = PgConnectOptions::from_str(url).expect("a valid URL");
        plaintext_by_default(url, &opts)
    }

    #[test]
    fn only_a_local_server_without_sslmode_is_reached_in_plain_text() {
        // Anything named explicitly, and any remote host, keeps sqlx's choice.
        assert!(!plain("postgres://loa@db.sgd.example.vn:5432/loa"));
        assert!(!plain("postgres://loa@10.0.0.5/loa"));
        assert!(!plain("postgres://loa@127.0.0.1/loa?sslmode=require"));
        assert!(!plain("postgres://loa@localhost/loa?sslmode=prefer"));
        assert!(!plain("postgres://loa@[::1]/loa?ssl-mode=verify-full"));
        if std::env::var_os("PGSSLMODE").is_some() {
            return;
        }
        assert!(plain("postgres://loa@127.0.0.1:5432/loa"));
        assert!(plain("postgres://loa@127.0.0.2/loa?options[search_path]=x"));
        assert!(plain("postgres://loa@localhost/loa"));
        assert!(plain("postgres://loa@[::1]:5432/loa"));
    }
}
