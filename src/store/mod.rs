//! The only place with SQL: the `Store` trait every caller uses, and its SQLite implementation (the
//! embedded default). A PostgreSQL implementation plugs in behind the same trait.

pub mod sqlite;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::domain::access::{AuditEntry, NewUser, Principal, User};
use crate::domain::campaign::{
    Audience, Campaign, CampaignState, NewCampaign, NewTemplate, Template,
};
use crate::domain::contact::{Addresses, Contact, NewContact, OptOuts};
use crate::domain::delivery::{DeliveryState, Reason};
use crate::domain::org::{NewOrg, Org};
use crate::domain::schedule::Calendar;
use crate::domain::{Channel, Millis};
pub use providers::zalo::token::TokenPair;

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

/// Where a fan-out stands. Each `Store::fan_out_step` does one bounded step and says the next, so the
/// caller can wake the dispatcher between steps and sending starts before the fan-out ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FanOutStep {
    Start,
    /// Parents through their children, continuing after this parent id.
    ParentsAfter(i64),
    /// People registered directly in the subtree: the audience's n-th such role.
    Direct(usize),
    Done,
}

/// A delivery the dispatcher holds a lease on, with the person's addresses.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub id: i64,
    pub run_id: i64,
    pub campaign_id: i64,
    pub contact_id: Option<i64>,
    pub channel: Option<Channel>,
    pub channel_index: i64,
    pub attempts: i64,
    pub state: DeliveryState,
    pub reason: Option<String>,
    pub vars: String,
    pub addresses: Addresses,
    pub opt_out: OptOuts,
    /// Staff chose to skip this channel for the campaign: the person moves on to their next one.
    pub channel_skipped: bool,
}

/// The new state of a delivery after an attempt or a receipt; applied only if the delivery is still
/// in `expected` (so a late or duplicate writer changes nothing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryUpdate {
    pub id: i64,
    pub expected: DeliveryState,
    pub state: DeliveryState,
    pub channel: Option<Channel>,
    pub channel_index: i64,
    pub attempts: i64,
    pub next_attempt_at: Millis,
    pub provider_message_id: Option<String>,
    pub segments: Option<i64>,
    pub reason_code: Option<Reason>,
    pub reason: Option<String>,
    /// Receipts will name the message by `provider_message_id` only: index it.
    pub receipt_by_provider_id: bool,
    /// When the message was handed to the provider (taken just before the call, so a watermark
    /// "everything sent before or at T" counts it); None: the time of recording.
    pub sent_at: Option<Millis>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Progress {
    pub total: i64,
    pub by_state: BTreeMap<String, i64>,
    /// channel -> state -> count (`none` for deliveries that never had a channel).
    pub by_channel: BTreeMap<String, BTreeMap<String, i64>>,
    pub by_reason: BTreeMap<String, i64>,
    /// channel -> reason code -> deliveries that ended failed on that channel.
    pub failed_by_channel: BTreeMap<String, BTreeMap<String, i64>>,
    /// channel -> reason code -> people who left that channel for their next one.
    pub fell_back: BTreeMap<String, BTreeMap<String, i64>>,
    /// Channels paused for the campaign because every send would fail the same way.
    pub paused: Vec<ChannelPause>,
}

/// `parents` parents spread over `classes` (class id, its school id) in turn, each registered at the
/// school with a phone `+8491` + 7 digits and one child in the class; with `siblings`, every tenth parent
/// has a second child seven classes further on.
#[derive(Clone, Debug)]
pub struct SyntheticAudience {
    pub classes: Vec<(i64, i64)>,
    pub parents: usize,
    pub siblings: bool,
}

/// What a roster or staff import changed (or, in a dry run, would change).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportCounts {
    pub students_created: u64,
    pub students_updated: u64,
    /// Of the updated students, those whose class changed (a promotion, 4B -> 5B).
    pub students_moved: u64,
    pub parents_created: u64,
    pub parents_updated: u64,
    pub classes_created: u64,
    pub links_created: u64,
    pub staff_created: u64,
    pub staff_updated: u64,
}

impl ImportCounts {
    pub fn add(&mut self, o: &ImportCounts) {
        self.students_created += o.students_created;
        self.students_updated += o.students_updated;
        self.students_moved += o.students_moved;
        self.parents_created += o.parents_created;
        self.parents_updated += o.parents_updated;
        self.classes_created += o.classes_created;
        self.links_created += o.links_created;
        self.staff_created += o.staff_created;
        self.staff_updated += o.staff_updated;
    }
}

/// Rows of a roster the store writes per transaction: large enough to be fast, small enough to
/// report progress and to hold one piece in memory. A dry run goes through the same pieces in one
/// transaction it rolls back, so that it reports exactly what the import will do.
pub const IMPORT_CHUNK: usize = 2_000;

/// Whether an import writes or only says what it would write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportMode {
    Commit,
    DryRun,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChannelPause {
    pub channel: String,
    pub reason: String,
    pub paused_at: Millis,
    /// Staff chose to move the waiting people on to their next channel.
    pub skipped: bool,
}

/// A stored webhook event waiting to be processed.
#[derive(Clone, Debug)]
pub struct WebhookEvent {
    pub id: i64,
    pub provider: String,
    pub body: String,
}

/// What processing a webhook event did, stored with it and counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventOutcome {
    Applied,
    /// It named no message or person Loa knows (or nothing changed: a replay, a late receipt).
    Unknown,
    /// An event Loa does not use.
    Ignored,
    /// The body could not be read.
    Malformed,
}

impl EventOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            EventOutcome::Applied => "applied",
            EventOutcome::Unknown => "unknown",
            EventOutcome::Ignored => "ignored",
            EventOutcome::Malformed => "malformed",
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct DeliveryFilter {
    pub state: Option<DeliveryState>,
    pub channel: Option<Channel>,
    pub after_id: Option<i64>,
    pub limit: i64,
}

/// Which contacts `Store::list_contacts` returns.
#[derive(Clone, Debug, Default)]
pub struct ContactFilter {
    /// The subtree: contacts of every node whose path starts with this ("" = the whole tree).
    pub org_path: String,
    /// A class (by path): its students, and the parents of its students.
    pub class_path: Option<String>,
    pub role: Option<crate::domain::contact::Role>,
    /// Only people with an address for this channel.
    pub has: Option<Channel>,
    /// Folded as `domain::contact::fold_name`; a contact matches when its folded name contains it.
    pub search: Option<String>,
    /// Contacts with an id above this one.
    pub after_id: Option<i64>,
    pub limit: i64,
}

/// A page of contacts and, when more may follow, the id to continue after (the last one looked at,
/// which a name search may have passed over).
#[derive(Clone, Debug, Serialize)]
pub struct ContactPage {
    pub contacts: Vec<Contact>,
    pub next_after: Option<i64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct DeliveryRow {
    pub id: i64,
    pub contact_id: Option<i64>,
    pub full_name: Option<String>,
    pub role: Option<String>,
    pub org_id: i64,
    pub channel: Option<String>,
    pub to: Option<String>,
    pub state: String,
    pub attempts: i64,
    pub segments: Option<i64>,
    pub reason_code: Option<String>,
    pub reason: Option<String>,
    pub updated_at: Millis,
}

/// Counts by org (school), channel, state and reason, for reports.
#[derive(Clone, Debug, Serialize)]
pub struct SummaryRow {
    pub org_id: i64,
    pub org_name: String,
    pub channel: Option<String>,
    pub state: String,
    pub reason_code: Option<String>,
    pub count: i64,
}

/// A run to record for a due slot of a recurring campaign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlotRun {
    /// Fan out and send this template.
    Pending { template_id: i64 },
    /// Recorded, not sent (missed beyond the grace period, holiday, not in term).
    Skipped { reason: String },
}

/// A run as listed: its slot, state and delivery counts by state.
#[derive(Clone, Debug, Serialize)]
pub struct RunRow {
    pub id: i64,
    pub slot: String,
    pub slot_at: Option<Millis>,
    pub state: String,
    pub reason: Option<String>,
    pub template_id: Option<i64>,
    pub paused: bool,
    pub created_at: Millis,
    pub finished_at: Option<Millis>,
    pub deliveries: BTreeMap<String, i64>,
}

/// One person of an audience as the preview sees them (what the fan-out would queue).
#[derive(Clone, Debug)]
pub struct AudiencePerson {
    pub addresses: Addresses,
    pub opt_out: OptOuts,
    pub name: String,
    pub students: Vec<String>,
    pub classes: Vec<String>,
    /// The school or office they are reached through.
    pub org_id: i64,
}

/// One audit log entry as read back.
#[derive(Clone, Debug, Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub at: Millis,
    pub user_id: Option<i64>,
    pub username: String,
    pub org_id: Option<i64>,
    pub action: String,
    pub object: String,
    pub object_id: Option<i64>,
    pub detail: serde_json::Value,
}

/// A receipt from a provider moving a delivery forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Receipt {
    Delivered,
    Read,
}

#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    async fn migrate(&self) -> Result<()>;

    async fn create_org(&self, o: &NewOrg, now: Millis) -> Result<Org>;
    async fn get_org(&self, id: i64) -> Result<Org>;
    async fn list_orgs(&self, parent_id: Option<i64>) -> Result<Vec<Org>>;

    async fn create_contact(&self, c: &NewContact, now: Millis) -> Result<Contact>;
    async fn get_contact(&self, id: i64) -> Result<Contact>;
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

    /// Sets whether approvers of a node may approve their own campaigns.
    async fn set_self_approval(&self, org_id: i64, allowed: bool) -> Result<Org>;

    async fn create_user(&self, u: &NewUser, now: Millis) -> Result<User>;
    async fn get_user(&self, id: i64) -> Result<User>;
    async fn user_by_name(&self, username: &str) -> Result<User>;
    /// Users of the nodes whose path starts with `org_path` ("" = all, operators included).
    async fn list_users(&self, org_path: &str) -> Result<Vec<User>>;
    /// The stored argon2 hash of a user's password, if any.
    async fn password_hash(&self, username: &str) -> Result<Option<String>>;
    /// Stores a token's hash for a user; returns the token's id.
    async fn create_api_token(
        &self,
        user_id: i64,
        name: &str,
        token_hash: &str,
        now: Millis,
    ) -> Result<i64>;
    /// Revokes a user's token; false if there was no such live token.
    async fn revoke_api_token(&self, user_id: i64, token_id: i64, now: Millis) -> Result<bool>;
    /// The enabled user a live token belongs to, with the path of their node.
    async fn principal_by_token(&self, token_hash: &str) -> Result<Option<Principal>>;

    async fn audit(&self, e: &AuditEntry, now: Millis) -> Result<()>;
    /// Entries about nodes whose path starts with `org_path` (operators: "" = everything, including
    /// entries about no node), newest first, before `before_id`.
    async fn list_audit(
        &self,
        org_path: &str,
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditRow>>;

    async fn create_template(
        &self,
        t: &NewTemplate,
        created_by: Option<i64>,
        now: Millis,
    ) -> Result<Template>;
    async fn get_template(&self, id: i64) -> Result<Template>;
    /// Puts a template in the shared library with topic tags; false if it was already there.
    async fn publish_template(
        &self,
        id: i64,
        by: i64,
        topics: &[String],
        now: Millis,
    ) -> Result<bool>;
    /// Library templates a node at `user_path` may use: those published at that node or above it
    /// ("" = every published template), optionally with a topic.
    async fn library(&self, user_path: &str, topic: Option<&str>) -> Result<Vec<Template>>;

    async fn create_campaign(
        &self,
        c: &NewCampaign,
        created_by: Option<i64>,
        now: Millis,
    ) -> Result<Campaign>;
    /// Replaces a campaign's editable fields if it is in one of `from` and was last changed at
    /// `expected_updated_at`; it returns to draft and loses any approval, and `editor` is recorded
    /// among its editors (who may not approve it). False otherwise.
    async fn update_campaign(
        &self,
        id: i64,
        c: &NewCampaign,
        from: &[CampaignState],
        expected_updated_at: Millis,
        editor: i64,
        now: Millis,
    ) -> Result<bool>;
    /// The users who ever edited a campaign (by `update_campaign`), in id order.
    async fn campaign_editors(&self, id: i64) -> Result<Vec<i64>>;
    /// Draft or rejected -> submitted, by a user.
    async fn submit_campaign(&self, id: i64, by: i64, now: Millis) -> Result<bool>;
    /// Submitted -> approved with the frozen content and its hash, if the campaign was last changed
    /// at `expected_updated_at` (what the approver saw is what gets approved).
    async fn approve_campaign(
        &self,
        id: i64,
        by: i64,
        expected_updated_at: Millis,
        snapshot: &serde_json::Value,
        hash: &str,
        now: Millis,
    ) -> Result<bool>;
    /// Submitted -> rejected with a reason.
    async fn reject_campaign(&self, id: i64, reason: &str, now: Millis) -> Result<bool>;
    /// Back to draft without approval, from one of `from` (content found changed after approval).
    async fn revoke_approval(&self, id: i64, from: &[CampaignState], now: Millis) -> Result<bool>;
    async fn get_campaign(&self, id: i64) -> Result<Campaign>;
    /// Campaigns of the nodes whose path starts with `org_path`, optionally of one node only.
    async fn list_campaigns(&self, org_path: &str, org_id: Option<i64>) -> Result<Vec<Campaign>>;
    /// Moves a campaign to `to` if it is in one of `from`; false when it was not.
    async fn transition_campaign(
        &self,
        id: i64,
        from: &[CampaignState],
        to: CampaignState,
        now: Millis,
    ) -> Result<bool>;
    /// An approved recurring campaign becomes scheduled; its slots count from `now`.
    async fn start_recurring(&self, id: i64, now: Millis) -> Result<bool>;
    /// Recurring campaigns whose schedule is live (scheduled or running, not ended).
    async fn recurring_campaigns(&self) -> Result<Vec<Campaign>>;
    /// Records the run of a slot unless that (campaign, slot) exists; true if this call recorded it.
    async fn create_slot_run(
        &self,
        campaign_id: i64,
        slot: &str,
        slot_at: Millis,
        run: &SlotRun,
        now: Millis,
    ) -> Result<bool>;
    /// Holds (or releases) a campaign's open runs, or one run: nothing of them is claimed or fanned
    /// out while held, and a held campaign fires no new slot. False if nothing changed.
    async fn set_paused(
        &self,
        campaign_id: i64,
        run_id: Option<i64>,
        paused: bool,
        now: Millis,
    ) -> Result<bool>;
    /// Of these runs, those paused or no longer open (their held deliveries must not go).
    async fn halted_runs(&self, run_ids: &[i64]) -> Result<Vec<i64>>;
    /// Cancels one open run: its unsent deliveries become cancelled. `None` if it was not open.
    async fn cancel_run(&self, campaign_id: i64, run_id: i64, now: Millis) -> Result<Option<u64>>;
    /// Runs of a campaign that were not skipped (how far a series has advanced).
    async fn runs_taken(&self, campaign_id: i64) -> Result<i64>;
    /// Moves the schedule cursor forward to `slot` (never back).
    async fn advance_cursor(&self, campaign_id: i64, slot: Millis) -> Result<()>;
    /// No more slots: the campaign ends once its open runs are done.
    async fn end_schedule(&self, campaign_id: i64, now: Millis) -> Result<()>;
    /// The template a run sends, if the run names one (series).
    async fn run_template(&self, run_id: i64) -> Result<Option<i64>>;
    async fn list_runs(&self, campaign_id: i64) -> Result<Vec<RunRow>>;
    /// Gives a node its own calendar (`None`: use its ancestors' again).
    async fn set_calendar(&self, org_id: i64, c: Option<&Calendar>) -> Result<()>;
    /// The calendar that applies at a node and the node it comes from (`None`: no calendar anywhere).
    async fn effective_calendar(&self, org_id: i64) -> Result<(Option<i64>, Calendar)>;
    /// A node's own quiet hours ("21:00-07:00"), or `None` to inherit.
    async fn set_quiet_hours(&self, org_id: i64, q: Option<&str>) -> Result<()>;
    /// The quiet hours set at the node or its nearest ancestor that has them.
    async fn effective_quiet_hours(&self, org_id: i64) -> Result<Option<String>>;

    /// Scheduled campaigns whose time has come.
    async fn due_campaigns(&self, now: Millis) -> Result<Vec<i64>>;
    /// Marks the campaign cancelled, its open runs cancelled and every unsent delivery cancelled.
    async fn cancel_campaign(&self, id: i64, now: Millis) -> Result<u64>;

    /// Creates the run for (campaign, slot) once; returns its id either way.
    async fn create_run(&self, campaign_id: i64, slot: &str, now: Millis) -> Result<i64>;
    /// Runs whose audience has not been fully fanned out: (run id, campaign id).
    async fn pending_runs(&self) -> Result<Vec<(i64, i64)>>;
    async fn mark_run_fanned_out(&self, run_id: i64) -> Result<()>;
    /// One step of a run's fan-out: queues a delivery for each person of the step, on the first channel
    /// of the campaign's order that reaches them (`domain::channel_choice`), ignoring a person already
    /// in the run; returns how many were queued and the next step.
    async fn fan_out_step(
        &self,
        run_id: i64,
        c: &Campaign,
        step: FanOutStep,
        now: Millis,
    ) -> Result<(u64, FanOutStep)>;
    /// Calls `f` for each person the campaign's audience holds, as the fan-out would find them (a
    /// parent of two children once), without writing anything.
    async fn audience(
        &self,
        c: &Campaign,
        f: &mut (dyn FnMut(AudiencePerson) + Send),
    ) -> Result<()>;
    /// Reopens a finished run (and its campaign) because a late receipt re-queued one of its deliveries.
    async fn reopen_run(&self, run_id: i64, now: Millis) -> Result<()>;
    /// Marks runs with nothing left to send done, then their campaigns; returns the campaigns done.
    /// Also ends as cancelled the sends of cancelled runs whose sender died (lease expired).
    async fn finish_runs(&self, now: Millis) -> Result<Vec<i64>>;

    /// This process as a lease holder (see `heartbeat`).
    fn instance_id(&self) -> &str;
    /// Says this process is alive until `alive_until`: the leases it holds are not taken over while it
    /// is, however long its sends take. Called by the dispatcher well within each lease.
    async fn heartbeat(&self, now: Millis, alive_until: Millis) -> Result<()>;
    /// This process stops holding anything (clean shutdown, after its work went back).
    async fn retire(&self) -> Result<()>;
    /// Leases up to `limit` due deliveries (queued or retrying and due, or sending with an expired
    /// lease whose holder is gone: not this process, and not one whose heartbeat is alive) of open
    /// runs, skipping the given channels.
    async fn claim(
        &self,
        limit: i64,
        now: Millis,
        lease_until: Millis,
        skip: &[Channel],
    ) -> Result<Vec<Claimed>>;
    /// Gives leased deliveries back untouched, due again at `at` (those of a cancelled run end
    /// cancelled).
    async fn release(&self, ids: &[i64], at: Millis) -> Result<()>;
    /// Applies outcomes in one transaction; returns how many applied.
    async fn record(&self, updates: &[DeliveryUpdate], now: Millis) -> Result<u64>;
    /// When the next queued/retrying delivery falls due.
    async fn next_due_at(&self) -> Result<Option<Millis>>;
    /// A delivery awaiting a receipt (sending or sent), for a failure report that needs the next
    /// channel; with `at`, only while the delivery is still on that attempt.
    async fn load_for_receipt(
        &self,
        id: i64,
        at: Option<crate::domain::delivery::AttemptRef>,
    ) -> Result<Option<Claimed>>;
    /// Moves a delivery forward on a receipt; false when it was not in a state that allows it, or
    /// (with `at`) has moved on from the attempt the receipt is about.
    async fn apply_receipt(
        &self,
        id: i64,
        at: Option<crate::domain::delivery::AttemptRef>,
        r: Receipt,
        now: Millis,
    ) -> Result<bool>;

    async fn progress(&self, campaign_id: i64) -> Result<Progress>;
    async fn list_deliveries(
        &self,
        campaign_id: i64,
        f: &DeliveryFilter,
    ) -> Result<Vec<DeliveryRow>>;
    async fn summary_by_org(&self, campaign_ids: &[i64]) -> Result<Vec<SummaryRow>>;
    /// Deliveries of these campaigns the dispatcher still has to act on.
    async fn unsettled_count(&self, campaign_ids: &[i64]) -> Result<i64>;

    /// The Zalo token pair of an app, if any.
    async fn zalo_token(&self, app_id: &str) -> Result<Option<TokenPair>>;
    /// Stores the pair for an app unless one is stored (tokens from the config seed the first run
    /// only: after that the database holds the newest, single-use refresh token).
    async fn seed_zalo_token(&self, app_id: &str, pair: &TokenPair, now: Millis) -> Result<()>;
    /// Stores the pair for an app, replacing any (an operator's `loa zalo set-token`).
    async fn set_zalo_token(&self, app_id: &str, pair: &TokenPair, now: Millis) -> Result<()>;
    /// Replaces the pair only if the stored refresh token is still `old_refresh`; false otherwise.
    async fn replace_zalo_token(
        &self,
        app_id: &str,
        old_refresh: &str,
        pair: &TokenPair,
        now: Millis,
    ) -> Result<bool>;

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

    /// Pauses a channel for a campaign (first reason wins); false if it was already paused.
    async fn pause_channel(
        &self,
        campaign_id: i64,
        channel: Channel,
        reason: &str,
        now: Millis,
    ) -> Result<bool>;
    /// Lifts a pause: the waiting deliveries are claimed again. False if the channel was not paused.
    async fn resume_channel(&self, campaign_id: i64, channel: Channel) -> Result<bool>;
    /// Keeps the pause but lets the waiting deliveries be claimed to move on to their next channel.
    async fn skip_channel(&self, campaign_id: i64, channel: Channel) -> Result<bool>;

    /// The delivery a provider message id names on a channel (see `DeliveryUpdate::receipt_by_provider_id`),
    /// only while that message is the delivery's current attempt: a report about an earlier channel
    /// or attempt names nothing.
    async fn delivery_by_ref(&self, channel: Channel, provider_ref: &str) -> Result<Option<i64>>;
    /// Moves every message sent on `channel` to the person with this address before `watermark`
    /// forward to `r` (Messenger watermarks); returns how many moved.
    async fn apply_watermark(
        &self,
        channel: Channel,
        address: &str,
        watermark: Millis,
        r: Receipt,
        now: Millis,
    ) -> Result<u64>;
    /// Records that the person with this Zalo user id follows (or no longer follows) the OA; returns
    /// how many contacts carry that id.
    async fn set_zalo_following(&self, user_id: &str, following: bool, now: Millis) -> Result<u64>;

    /// Stores a webhook event unless the same body was stored before; false for a replay.
    async fn insert_webhook_event(
        &self,
        provider: &str,
        digest: &str,
        body: &str,
        now: Millis,
    ) -> Result<bool>;
    async fn pending_webhook_events(&self, limit: i64) -> Result<Vec<WebhookEvent>>;
    async fn finish_webhook_event(&self, id: i64, outcome: EventOutcome, now: Millis)
    -> Result<()>;
    /// provider -> outcome (`pending` for unprocessed) -> count.
    async fn webhook_counts(&self) -> Result<BTreeMap<String, BTreeMap<String, i64>>>;

    /// Stores `value` under `key` unless present; returns what is stored.
    async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String>;
}
