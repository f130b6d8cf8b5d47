//! Turns due campaigns into runs and fans pending runs out. The database remembers what ran: a run is
//! unique per (campaign, slot), so a restart or a second instance never produces a slot twice. Like
//! every door that sends, it checks the campaign's approval against the campaign as it is first.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::approval;
use crate::audience::fan_out;
use crate::clock::now_ms;
use crate::domain::campaign::{Campaign, CampaignState};
use crate::domain::schedule::{SlotFate, slot_fate};
use crate::store::{SlotRun, Store};

pub struct Scheduler {
    store: Arc<dyn Store>,
    /// How old a missed slot may be and still run.
    grace_ms: i64,
    /// Wakes this scheduler (a campaign was started).
    pub wake: Arc<Notify>,
    /// Wakes the dispatcher (deliveries were queued).
    dispatch_wake: Arc<Notify>,
}

impl Scheduler {
    pub fn new(
        store: Arc<dyn Store>,
        grace_ms: i64,
        wake: Arc<Notify>,
        dispatch_wake: Arc<Notify>,
    ) -> Self {
        Scheduler {
            store,
            grace_ms,
            wake,
            dispatch_wake,
        }
    }

    /// One pass at the wall clock's time.
    pub async fn tick(&self) -> anyhow::Result<()> {
        self.tick_at(now_ms()).await
    }

    /// One pass as if it were `now`: start due scheduled campaigns, record the due slots of recurring
    /// ones, fan out every pending run. Tests drive time through here.
    pub async fn tick_at(&self, now: i64) -> anyhow::Result<()> {
        for c in self.store.recurring_campaigns().await? {
            if let Err(e) = self.recur(&c, now).await {
                tracing::error!(campaign = c.id, error = %e, "recurring campaign pass failed");
            }
        }
        for id in self.store.due_campaigns(now).await? {
            let c = self.store.get_campaign(id).await?;
            if let Err(e) = approval::verify(self.store.as_ref(), &c).await {
                tracing::error!(campaign = id, error = %e, "scheduled campaign not sent: approval does not hold; back to draft");
                self.store
                    .revoke_approval(id, &[CampaignState::Scheduled], now)
                    .await?;
                continue;
            }
            if self
                .store
                .transition_campaign(id, &[CampaignState::Scheduled], CampaignState::Running, now)
                .await?
            {
                let slot = format!("once:{}", c.send_at.unwrap_or(0));
                self.store.create_run(id, &slot, now).await?;
                crate::metrics::scheduler_run("once");
                tracing::info!(campaign = id, "scheduled campaign started");
            }
        }
        for (run_id, campaign_id) in self.store.pending_runs().await? {
            let campaign = self.store.get_campaign(campaign_id).await?;
            if let Err(e) = approval::verify(self.store.as_ref(), &campaign).await {
                // A run exists only through a checked start, so this is a tampered database: stop
                // the campaign rather than reach anyone with content nobody approved.
                tracing::error!(campaign = campaign_id, run = run_id, error = %e, "run not fanned out: approval does not hold; campaign cancelled");
                self.store.cancel_campaign(campaign_id, now).await?;
                continue;
            }
            let started = std::time::Instant::now();
            let n = fan_out(&self.store, run_id, &campaign, &self.dispatch_wake).await?;
            tracing::info!(
                campaign = campaign_id,
                run = run_id,
                deliveries = n,
                ms = started.elapsed().as_millis() as u64,
                "run fanned out"
            );
        }
        Ok(())
    }

    /// Records every slot of a recurring campaign due by `now` since the last one considered: a run to
    /// send, or a skipped run with its reason. Each (campaign, slot) is recorded once whoever gets
    /// there first, so a restart or a second scheduler changes nothing.
    async fn recur(&self, c: &Campaign, now: i64) -> anyhow::Result<()> {
        let Some(rec) = &c.schedule else {
            return Ok(());
        };
        if let Err(e) = approval::verify(self.store.as_ref(), c).await {
            tracing::error!(campaign = c.id, error = %e, "recurring campaign stopped: approval does not hold; back to draft");
            self.store
                .revoke_approval(c.id, &[CampaignState::Scheduled], now)
                .await?;
            return Ok(());
        }
        let (_, calendar) = self.store.effective_calendar(c.org_id).await?;
        let mut cursor = c.schedule_cursor.unwrap_or(now);
        loop {
            let Some(slot) = rec.next_after(cursor) else {
                self.store.end_schedule(c.id, now).await?;
                break;
            };
            if rec.past_end(slot) {
                self.store.end_schedule(c.id, now).await?;
                break;
            }
            if slot > now {
                break;
            }
            let key = format!("at:{slot}");
            let run = match slot_fate(rec, slot, now, self.grace_ms, &calendar) {
                SlotFate::Skip(reason) => SlotRun::Skipped { reason },
                SlotFate::Run if c.series.is_empty() => SlotRun::Pending {
                    template_id: c.template_id,
                },
                SlotFate::Run => {
                    let taken = self.store.runs_taken(c.id).await?;
                    match c.series.get(taken as usize) {
                        Some(t) => SlotRun::Pending { template_id: *t },
                        None => {
                            self.store.end_schedule(c.id, now).await?;
                            break;
                        }
                    }
                }
            };
            if self
                .store
                .create_slot_run(c.id, &key, slot, &run, now)
                .await?
            {
                crate::metrics::scheduler_run("slot");
                tracing::info!(campaign = c.id, slot, run = ?run, "slot recorded");
            }
            self.store.advance_cursor(c.id, slot).await?;
            cursor = slot;
        }
        // The series' last template went out: no slot after it.
        if !c.series.is_empty() && self.store.runs_taken(c.id).await? >= c.series.len() as i64 {
            self.store.end_schedule(c.id, now).await?;
        }
        Ok(())
    }

    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            if let Err(e) = self.tick().await {
                tracing::error!(error = %e, "scheduler pass failed");
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.cancelled() => {}
            }
        }
    }
}
