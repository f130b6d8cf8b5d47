//! SQLite side of recurring campaigns and their slots, school calendars and quiet hours.

use super::super::*;

#[async_trait::async_trait]
impl ScheduleStore for SqliteStore {
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

    async fn runs_taken(&self, campaign_id: i64) -> Result<i64> {
        self.do_runs_taken(campaign_id).await
    }

    async fn advance_cursor(&self, campaign_id: i64, slot: Millis) -> Result<()> {
        self.do_advance_cursor(campaign_id, slot).await
    }

    async fn end_schedule(&self, campaign_id: i64, now: Millis) -> Result<()> {
        self.do_end_schedule(campaign_id, now).await
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
}
