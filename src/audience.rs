//! Fan-out: an audience filter becomes one delivery per person for a run, in bounded steps done by
//! the store in SQL (a million people never pass through memory), waking the dispatcher after each.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::clock::now_ms;
use crate::domain::campaign::Campaign;
use crate::store::{FanOutStep, Store, StoreError};

/// Fans a run out and marks it running. Safe to repeat after a crash: a person already in the run is
/// not inserted twice.
pub async fn fan_out(
    store: &Arc<dyn Store>,
    run_id: i64,
    campaign: &Campaign,
    wake: &Notify,
) -> Result<u64, StoreError> {
    let (mut step, mut inserted) = (FanOutStep::Start, 0);
    while step != FanOutStep::Done {
        let (n, next) = store.fan_out_step(run_id, campaign, step, now_ms()).await?;
        if n > 0 {
            inserted += n;
            wake.notify_one();
            // Other instances' dispatchers too (PostgreSQL's NOTIFY), not only at their next poll.
            if let Err(e) = store.announce_work().await {
                tracing::debug!(error = %e, "announcing queued work to other instances failed");
            }
        }
        step = next;
    }
    store.mark_run_fanned_out(run_id).await?;
    store.finish_runs(now_ms()).await?;
    Ok(inserted)
}
