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
use crate::domain::campaign::CampaignState;
use crate::store::Store;

pub struct Scheduler {
    store: Arc<dyn Store>,
    /// Wakes this scheduler (a campaign was started).
    pub wake: Arc<Notify>,
    /// Wakes the dispatcher (deliveries were queued).
    dispatch_wake: Arc<Notify>,
}

impl Scheduler {
    pub fn new(store: Arc<dyn Store>, wake: Arc<Notify>, dispatch_wake: Arc<Notify>) -> Self {
        Scheduler {
            store,
            wake,
            dispatch_wake,
        }
    }

    /// One pass: start due scheduled campaigns, fan out every pending run.
    pub async fn tick(&self) -> anyhow::Result<()> {
        let now = now_ms();
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
