//! Recurring campaigns and their slots, school calendars and quiet hours.

use super::*;

#[async_trait::async_trait]
pub trait ScheduleStore: Send + Sync {
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

    /// Runs of a campaign that were not skipped (how far a series has advanced).
    async fn runs_taken(&self, campaign_id: i64) -> Result<i64>;

    /// Moves the schedule cursor forward to `slot` (never back).
    async fn advance_cursor(&self, campaign_id: i64, slot: Millis) -> Result<()>;

    /// No more slots: the campaign ends once its open runs are done.
    async fn end_schedule(&self, campaign_id: i64, now: Millis) -> Result<()>;

    /// Gives a node its own calendar (`None`: use its ancestors' again).
    async fn set_calendar(&self, org_id: i64, c: Option<&Calendar>) -> Result<()>;

    /// The calendar that applies at a node and the node it comes from (`None`: no calendar anywhere).
    async fn effective_calendar(&self, org_id: i64) -> Result<(Option<i64>, Calendar)>;

    /// A node's own quiet hours ("21:00-07:00"), or `None` to inherit.
    async fn set_quiet_hours(&self, org_id: i64, q: Option<&str>) -> Result<()>;

    /// The quiet hours set at the node or its nearest ancestor that has them.
    async fn effective_quiet_hours(&self, org_id: i64) -> Result<Option<String>>;
}
