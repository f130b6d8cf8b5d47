//! Runs, their fan-out into deliveries, the claim and its leases, outcomes, progress and per-campaign channel pauses.

use super::*;

#[async_trait::async_trait]
pub trait DeliveryStore: Send + Sync {
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

    /// The template a run sends, if the run names one (series).
    async fn run_template(&self, run_id: i64) -> Result<Option<i64>>;

    async fn list_runs(&self, campaign_id: i64) -> Result<Vec<RunRow>>;

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

    /// How many `record` batches the dispatcher may have committing at once. One on a store with a
    /// single writer (SQLite: a second batch would only queue behind the first, and be smaller).
    fn record_writers(&self) -> usize {
        1
    }

    /// When the next queued/retrying delivery falls due.
    async fn next_due_at(&self) -> Result<Option<Millis>>;

    async fn progress(&self, campaign_id: i64) -> Result<Progress>;

    async fn list_deliveries(
        &self,
        campaign_id: i64,
        f: &DeliveryFilter,
    ) -> Result<Vec<DeliveryRow>>;

    async fn summary_by_org(&self, campaign_ids: &[i64]) -> Result<Vec<SummaryRow>>;

    /// Deliveries of these campaigns the dispatcher still has to act on.
    async fn unsettled_count(&self, campaign_ids: &[i64]) -> Result<i64>;

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
}
