//! Fan-out: an audience filter becomes one delivery per person for a run, streamed in batches so a
//! million-person audience never sits in memory, each person's first channel chosen as it goes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc};

use crate::clock::now_ms;
use crate::dispatch::decide::initial;
use crate::domain::campaign::Campaign;
use crate::store::{NewDelivery, Recipient, Store, StoreError};

const BATCH: usize = 1000;

fn to_delivery(run_id: i64, c: &Campaign, r: Recipient) -> NewDelivery {
    let (channel, channel_index, state, reason_code) =
        initial(&c.channels, &r.addresses, r.opt_out);
    NewDelivery {
        run_id,
        campaign_id: c.id,
        contact_id: r.contact_id,
        org_id: r.org_id,
        channel,
        channel_index,
        state,
        reason_code,
        vars: serde_json::to_string(&r.vars).unwrap_or_else(|_| "{}".into()),
    }
}

/// Fans a run out and marks it running. Safe to repeat after a crash: a person already in the run is
/// not inserted twice. Wakes the dispatcher after each batch so sending starts before fan-out ends.
pub async fn fan_out(
    store: &Arc<dyn Store>,
    run_id: i64,
    campaign: &Campaign,
    wake: &Notify,
) -> Result<u64, StoreError> {
    let (tx, mut rx) = mpsc::channel::<Vec<Recipient>>(4);
    let producer = {
        let store = store.clone();
        let audience = campaign.audience.clone();
        tokio::spawn(async move { store.stream_audience(&audience, BATCH, tx).await })
    };
    let mut inserted = 0;
    let (mut waiting, mut writing) = (Duration::ZERO, Duration::ZERO);
    loop {
        let t = Instant::now();
        let Some(batch) = rx.recv().await else { break };
        waiting += t.elapsed();
        let t = Instant::now();
        let rows: Vec<NewDelivery> = batch
            .into_iter()
            .map(|r| to_delivery(run_id, campaign, r))
            .collect();
        inserted += store.insert_deliveries(&rows, now_ms()).await?;
        writing += t.elapsed();
        wake.notify_one();
    }
    tracing::debug!(
        run = run_id,
        inserted,
        waiting_ms = waiting.as_millis() as u64,
        writing_ms = writing.as_millis() as u64,
        "fan-out time split"
    );
    match producer.await {
        Ok(r) => {
            r?;
        }
        Err(e) => return Err(StoreError::Invalid(format!("audience stream crashed: {e}"))),
    }
    store.mark_run_fanned_out(run_id).await?;
    store.finish_runs(now_ms()).await?;
    Ok(inserted)
}
