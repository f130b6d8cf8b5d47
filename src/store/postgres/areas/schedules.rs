//! PostgreSQL side of the schedules area (not yet ported: each method says so).
#![allow(unused_variables)]

use super::super::*;

#[async_trait::async_trait]
impl ScheduleStore for PgStore {
    async fn start_recurring(&self, id: i64, now: Millis) -> Result<bool> {
        Err(not_ported("start_recurring"))
    }

    async fn recurring_campaigns(&self) -> Result<Vec<Campaign>> {
        Err(not_ported("recurring_campaigns"))
    }

    async fn create_slot_run(
        &self,
        campaign_id: i64,
        slot: &str,
        slot_at: Millis,
        run: &SlotRun,
        now: Millis,
    ) -> Result<bool> {
        Err(not_ported("create_slot_run"))
    }

    async fn runs_taken(&self, campaign_id: i64) -> Result<i64> {
        Err(not_ported("runs_taken"))
    }

    async fn advance_cursor(&self, campaign_id: i64, slot: Millis) -> Result<()> {
        Err(not_ported("advance_cursor"))
    }

    async fn end_schedule(&self, campaign_id: i64, now: Millis) -> Result<()> {
        Err(not_ported("end_schedule"))
    }

    async fn set_calendar(&self, org_id: i64, c: Option<&Calendar>) -> Result<()> {
        Err(not_ported("set_calendar"))
    }

    async fn effective_calendar(&self, org_id: i64) -> Result<(Option<i64>, Calendar)> {
        Err(not_ported("effective_calendar"))
    }

    async fn set_quiet_hours(&self, org_id: i64, q: Option<&str>) -> Result<()> {
        Err(not_ported("set_quiet_hours"))
    }

    async fn effective_quiet_hours(&self, org_id: i64) -> Result<Option<String>> {
        Err(not_ported("effective_quiet_hours"))
    }
}
