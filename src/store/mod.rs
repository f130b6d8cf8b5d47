//! The only place with SQL. `Store` is every area's trait in one (tree, contacts and imports, users and
//! audit, campaigns and approval, schedules, deliveries and the claim, receipts and webhook events);
//! each area's trait sits in its own file and each dialect implements it in a file of the same name.
//! SQLite is the embedded default; the types the store takes and returns are `domain` types.

pub(super) mod campaigns;
pub(super) mod contacts;
pub mod copy;
mod deliveries;
pub mod postgres;
mod receipts;
mod rows;
mod schedules;
mod sessions;
mod sql_error;
pub mod sqlite;
mod tree;
pub(super) mod users;

pub use campaigns::CampaignStore;
pub use contacts::ContactStore;
pub use deliveries::DeliveryStore;
pub use receipts::ReceiptStore;
pub use schedules::ScheduleStore;
pub use sessions::SessionStore;
pub use tree::OrgStore;
pub use users::UserStore;

/// The area traits in scope, for code that calls a concrete store (`SqliteStore`); a `dyn Store`
/// reaches every area's methods without them.
pub mod prelude {
    pub use super::{
        CampaignStore as _, ContactStore as _, DeliveryStore as _, OrgStore as _,
        ReceiptStore as _, ScheduleStore as _, SessionStore as _, Store, UserStore as _,
    };
}

use std::collections::BTreeMap;

use crate::domain::access::{AuditEntry, NewUser, Principal, User};
use crate::domain::campaign::{Campaign, CampaignState, NewCampaign, NewTemplate, Template};
use crate::domain::contact::{Addresses, Contact, NewContact, OptOuts};
use crate::domain::delivery::DeliveryState;
use crate::domain::org::{NewOrg, Org};
use crate::domain::schedule::Calendar;
use crate::domain::{Channel, Millis};
pub use providers::zalo::token::TokenPair;
// The types the store takes and returns are domain types; callers may name them from here.
pub use crate::domain::access::AuditRow;
pub use crate::domain::contact::{ContactFilter, ContactPage};
pub use crate::domain::delivery::{Claimed, DeliveryFilter, DeliveryRow, DeliveryUpdate, Receipt};
pub use crate::domain::roster::{IMPORT_CHUNK, ImportCounts, ImportMode};
pub use crate::domain::run::{
    AudiencePerson, ChannelPause, FanOutStep, Progress, RunRow, SlotRun, SummaryRow,
    SyntheticAudience,
};
pub use crate::domain::webhook_event::{EventOutcome, WebhookEvent};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("already exists: {0}")]
    Conflict(String),
    #[error("refers to something that does not exist: {0}")]
    InvalidReference(String),
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("database error: {0}")]
    Db(sqlx::Error),
    /// The database cannot be written right now (disk full, I/O error, read-only, locked): nothing
    /// of the request was stored, and the same request may succeed later.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A name for this process as a lease holder: the pid for operators reading the table, and a random
/// part so that a restarted process with a reused pid is someone else.
pub fn new_instance_id() -> String {
    format!("{}-{:016x}", std::process::id(), rand::random::<u64>())
}

/// A `database.url` fit to print: the password of `postgres://user:password@host/db` and the query
/// (which may carry `password=`) left out.
pub fn display_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let rest = rest.split('?').next().unwrap_or_default();
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}@{host}{path}")
        }
        None => format!("{scheme}://{rest}"),
    }
}

/// Opens the store a `database.url` names: `postgres://` (or `postgresql://`) for PostgreSQL,
/// `sqlite://` or a plain path for SQLite. Errors never repeat the URL, which may hold a password.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>> {
    open_with_password(url, None).await
}

/// `open`, with PostgreSQL's password given apart from the URL (`database.password_file`).
pub async fn open_with_password(
    url: &str,
    password: Option<&str>,
) -> Result<std::sync::Arc<dyn Store>> {
    let scheme = url.split_once("://").map(|(s, _)| s);
    Ok(match scheme {
        Some("postgres" | "postgresql") => {
            std::sync::Arc::new(postgres::PgStore::open(url, password).await?)
        }
        Some("sqlite") | None => std::sync::Arc::new(sqlite::SqliteStore::open(url).await?),
        Some(other) => {
            return Err(StoreError::Invalid(format!(
                "database.url: unknown scheme {other:?} (use sqlite:// or postgres://)"
            )));
        }
    })
}

#[async_trait::async_trait]
pub trait Store:
    OrgStore
    + ContactStore
    + UserStore
    + CampaignStore
    + ScheduleStore
    + DeliveryStore
    + ReceiptStore
    + SessionStore
    + Send
    + Sync
    + 'static
{
    async fn migrate(&self) -> Result<()>;

    /// For `/readyz`: the database answers a read, and its schema is at this build's newest
    /// migration (an older schema means `migrate` has not run or failed; a newer one, that a newer
    /// Loa migrated the database this one shares). The error says which.
    async fn readiness(&self) -> Result<()>;

    /// Stores `value` under `key` unless present; returns what is stored.
    async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String>;

    /// How many processes keep a row in `instances` alive at `now` (this one included once it
    /// has beaten): they share each provider's quota.
    async fn live_instances(&self, now: Millis) -> Result<i64>;

    /// Tells the other instances on this database that deliveries were queued, so that an idle
    /// one claims them at once rather than at its next poll. SQLite runs one instance: nothing.
    async fn announce_work(&self) -> Result<()> {
        Ok(())
    }

    /// Wakes `wake` each time another instance announces work; runs until dropped. On SQLite it
    /// returns at once (nobody else announces).
    async fn watch_work(&self, wake: std::sync::Arc<tokio::sync::Notify>) {
        let _ = wake;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn printed_urls_hold_no_password() {
        let p = super::display_url;
        assert_eq!(
            p("postgres://loa:s3cret@db.sgd.vn:5432/loa?sslmode=verify-full&password=x"),
            "postgres://loa@db.sgd.vn:5432/loa"
        );
        assert_eq!(p("postgres://loa@db/loa"), "postgres://loa@db/loa");
        assert_eq!(
            p("sqlite:///var/lib/loa/loa.db"),
            "sqlite:///var/lib/loa/loa.db"
        );
        assert_eq!(p("loa-data/loa.db"), "loa-data/loa.db");
    }
}
