//! Contacts and imports: people, guardianship links, opt-outs and consent, erasure, roster and staff imports.

use super::*;

#[async_trait::async_trait]
pub trait ContactStore: Send + Sync {
    async fn create_contact(&self, c: &NewContact, now: Millis) -> Result<Contact>;

    async fn get_contact(&self, id: i64) -> Result<Contact>;

    /// A student's parents, or a parent's children (at most 50).
    async fn relatives(&self, id: i64) -> Result<Vec<Contact>>;

    /// The newest `limit` messages sent (or tried) to a person, with their campaign.
    async fn contact_messages(
        &self,
        id: i64,
        limit: i64,
    ) -> Result<Vec<crate::domain::delivery::ContactMessage>>;

    /// One page of the contacts of a subtree, in id order, with the filters of `f`.
    async fn list_contacts(&self, f: &ContactFilter) -> Result<ContactPage>;

    async fn set_opt_out(
        &self,
        id: i64,
        channel: Channel,
        out: bool,
        now: Millis,
    ) -> Result<Contact>;

    /// Records where the consent to message a person comes from and when it was given.
    async fn set_consent(&self, id: i64, source: &str, at: Millis, now: Millis) -> Result<Contact>;

    /// Erases a person: their contact row and guardian links go, their unsent deliveries are
    /// cancelled, and every delivery keeps only anonymous facts (org, channel, state, reason with
    /// addresses masked) for reports; their receipt refs go, webhook events naming them are
    /// emptied, a student's name leaves their parents' deliveries, and nothing of them stays
    /// readable in the store's files (SQLite: secure_delete, WAL checkpoint). False when there was
    /// no such contact.
    async fn erase_contact(&self, id: i64, now: Millis) -> Result<bool>;

    async fn link_guardian(
        &self,
        parent_id: i64,
        student_id: i64,
        relation: Option<&str>,
    ) -> Result<()>;

    /// Inserts many validated contacts in one transaction (imports, benchmarks); returns their ids in
    /// order. Every `org_id` must exist.
    async fn insert_contacts(&self, rows: &[NewContact], now: Millis) -> Result<Vec<i64>>;

    /// Links many (parent, student) pairs; pairs whose roles do not match are ignored. Returns how
    /// many were linked.
    async fn link_guardians(&self, pairs: &[(i64, i64)]) -> Result<u64>;

    /// Imports validated roster rows into a school in one transaction: classes created as named,
    /// students found by code (or class and name, or name and a parent's address after a
    /// promotion) and parents by phone, email or Zalo id, changed fields updated, parents linked to
    /// their children. Importing the same rows again changes nothing. The rows come in pieces as
    /// the file is read: with `Commit` each piece is its own transaction, and `progress` hears how
    /// many rows each committed; `DryRun` takes every piece in one transaction, rolled back.
    async fn import_roster(
        &self,
        school_id: i64,
        pieces: &mut tokio::sync::mpsc::Receiver<Vec<crate::domain::roster::RosterEntry>>,
        now: Millis,
        mode: ImportMode,
        progress: &mut (dyn FnMut(usize) + Send),
    ) -> Result<ImportCounts>;

    /// Imports a staff list into a node in one transaction: staff found again by phone, email,
    /// Zalo id or name among the node's staff; `DryRun` rolls back.
    async fn import_staff(
        &self,
        org_id: i64,
        entries: &[crate::domain::roster::StaffEntry],
        now: Millis,
        mode: ImportMode,
    ) -> Result<ImportCounts>;

    /// Generates a synthetic audience (benchmarks): see `SyntheticAudience`.
    async fn seed_synthetic(&self, s: &SyntheticAudience, now: Millis) -> Result<()>;
}

/// The same text on both dialects. A person's relatives through the guardian links, either way.
pub(super) fn relatives_sql(cols: &str) -> String {
    format!(
        "SELECT {cols} FROM contacts WHERE id IN (SELECT parent_id FROM guardian_links WHERE student_id = $1) \
         OR id IN (SELECT student_id FROM guardian_links WHERE parent_id = $1) ORDER BY id LIMIT 50"
    )
}

pub(super) const CONTACT_MESSAGES: &str = "SELECT d.campaign_id, c.name AS campaign_name, d.channel, d.state, \
     d.reason_code, d.updated_at FROM deliveries d JOIN campaigns c ON c.id = d.campaign_id \
     WHERE d.contact_id = $1 ORDER BY d.id DESC LIMIT $2";
