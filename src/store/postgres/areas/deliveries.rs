//! PostgreSQL side of the deliveries area (not yet ported: each method says so).
#![allow(unused_variables)]

use super::super::*;

#[async_trait::async_trait]
impl DeliveryStore for PgStore {
    async fn set_paused(
        &self,
        campaign_id: i64,
        run_id: Option<i64>,
        paused: bool,
        now: Millis,
    ) -> Result<bool> {
        Err(not_ported("set_paused"))
    }

    async fn halted_runs(&self, run_ids: &[i64]) -> Result<Vec<i64>> {
        Err(not_ported("halted_runs"))
    }

    async fn cancel_run(&self, campaign_id: i64, run_id: i64, now: Millis) -> Result<Option<u64>> {
        Err(not_ported("cancel_run"))
    }

    async fn run_template(&self, run_id: i64) -> Result<Option<i64>> {
        Err(not_ported("run_template"))
    }

    async fn list_runs(&self, campaign_id: i64) -> Result<Vec<RunRow>> {
        Err(not_ported("list_runs"))
    }

    async fn create_run(&self, campaign_id: i64, slot: &str, now: Millis) -> Result<i64> {
        Err(not_ported("create_run"))
    }

    async fn pending_runs(&self) -> Result<Vec<(i64, i64)>> {
        Err(not_ported("pending_runs"))
    }

    async fn mark_run_fanned_out(&self, run_id: i64) -> Result<()> {
        Err(not_ported("mark_run_fanned_out"))
    }

    async fn fan_out_step(
        &self,
        run_id: i64,
        c: &Campaign,
        step: FanOutStep,
        now: Millis,
    ) -> Result<(u64, FanOutStep)> {
        Err(not_ported("fan_out_step"))
    }

    async fn audience(
        &self,
        c: &Campaign,
        f: &mut (dyn FnMut(AudiencePerson) + Send),
    ) -> Result<()> {
        Err(not_ported("audience"))
    }

    async fn reopen_run(&self, run_id: i64, now: Millis) -> Result<()> {
        Err(not_ported("reopen_run"))
    }

    async fn finish_runs(&self, now: Millis) -> Result<Vec<i64>> {
        Err(not_ported("finish_runs"))
    }

    fn instance_id(&self) -> &str {
        &self.owner
    }

    async fn heartbeat(&self, now: Millis, alive_until: Millis) -> Result<()> {
        Err(not_ported("heartbeat"))
    }

    async fn retire(&self) -> Result<()> {
        Err(not_ported("retire"))
    }

    async fn claim(
        &self,
        limit: i64,
        now: Millis,
        lease_until: Millis,
        skip: &[Channel],
    ) -> Result<Vec<Claimed>> {
        Err(not_ported("claim"))
    }

    async fn release(&self, ids: &[i64], at: Millis) -> Result<()> {
        Err(not_ported("release"))
    }

    async fn record(&self, updates: &[DeliveryUpdate], now: Millis) -> Result<u64> {
        Err(not_ported("record"))
    }

    async fn next_due_at(&self) -> Result<Option<Millis>> {
        Err(not_ported("next_due_at"))
    }

    async fn progress(&self, campaign_id: i64) -> Result<Progress> {
        Err(not_ported("progress"))
    }

    async fn list_deliveries(
        &self,
        campaign_id: i64,
        f: &DeliveryFilter,
    ) -> Result<Vec<DeliveryRow>> {
        Err(not_ported("list_deliveries"))
    }

    async fn summary_by_org(&self, campaign_ids: &[i64]) -> Result<Vec<SummaryRow>> {
        Err(not_ported("summary_by_org"))
    }

    async fn unsettled_count(&self, campaign_ids: &[i64]) -> Result<i64> {
        Err(not_ported("unsettled_count"))
    }

    async fn pause_channel(
        &self,
        campaign_id: i64,
        channel: Channel,
        reason: &str,
        now: Millis,
    ) -> Result<bool> {
        Err(not_ported("pause_channel"))
    }

    async fn resume_channel(&self, campaign_id: i64, channel: Channel) -> Result<bool> {
        Err(not_ported("resume_channel"))
    }

    async fn skip_channel(&self, campaign_id: i64, channel: Channel) -> Result<bool> {
        Err(not_ported("skip_channel"))
    }
}
