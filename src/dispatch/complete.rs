//! Records outcomes in batched writes. Each outcome carries its send slot until it is committed, so
//! what a crash can re-send is bounded by the dispatcher's concurrency; a store that cannot write is
//! retried until it can, and meanwhile the dispatcher claims nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;
use crate::store::{DeliveryUpdate, Store};

/// An attempt's outcome on its way to the store, with the send slot it keeps busy until then.
pub struct Outcome {
    pub update: DeliveryUpdate,
    /// Dropped once the outcome is committed (or given up at shutdown).
    pub slot: Option<OwnedSemaphorePermit>,
}

/// How often finished runs are closed while outcomes flow, and how long after the last one.
const FINISH_EVERY: Duration = Duration::from_millis(200);

/// Whether the store takes writes, as the completer and the claim last saw it.
#[derive(Default)]
pub struct Health {
    failing: AtomicBool,
    healed: Notify,
}

impl Health {
    pub fn failing(&self) -> bool {
        self.failing.load(Ordering::Acquire)
    }

    /// Records what the last write did; logs only the changes, not every retry.
    pub fn set(&self, failing: bool, what: &str) {
        let was = self.failing.swap(failing, Ordering::AcqRel);
        if was && !failing {
            tracing::info!(what, "store writes again: dispatching resumes");
            self.healed.notify_waiters();
        } else if !was && failing {
            tracing::error!(what, "store cannot write: dispatching stops until it can");
        }
    }

    /// Returns once writes succeed again, or after `at_most` (the caller then probes the store).
    pub async fn wait_healed(&self, at_most: Duration) {
        let healed = self.healed.notified();
        if !self.failing() {
            return;
        }
        let _ = tokio::time::timeout(at_most, healed).await;
    }
}

/// The wait before the n-th retry of a failed write (n from 1): 100 ms doubling, at most 5 s.
pub fn backoff(n: u32) -> Duration {
    Duration::from_millis((100u64 << n.saturating_sub(1).min(6)).min(5_000))
}

/// Writes outcomes in batches (one transaction each), then closes finished runs. Runs until every
/// sender is gone; after `shutdown`, a store that still cannot write is given up on after `grace`.
/// Up to `record_writers` batches commit at once (see there); what arrives meanwhile forms the next.
pub async fn complete(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<Outcome>,
    wake: Arc<Notify>,
    health: Arc<Health>,
    shutdown: CancellationToken,
    grace: Duration,
) {
    let writers = store.record_writers().max(1);
    // Batches being committed. Dropped with this task (also when it is aborted, as a crash would
    // end them), which drops their slots with them.
    let mut writing: JoinSet<()> = JoinSet::new();
    let mut open = true;
    let mut last_finish = 0;
    // Outcomes recorded since runs were last closed.
    let mut unfinished = false;
    while open || !writing.is_empty() {
        tokio::select! {
            // A batch committed (or was given up at shutdown).
            Some(done) = writing.join_next(), if !writing.is_empty() => {
                if let Err(e) = done {
                    tracing::error!(error = %e, "recording a batch of outcomes ended abnormally");
                }
                // Closing finished runs is a write of its own: at most every FINISH_EVERY while
                // outcomes flow (after every batch it took a fifth of the writer), and once when
                // they stop.
                unfinished = true;
                let now = now_ms();
                if now - last_finish >= FINISH_EVERY.as_millis() as i64 {
                    last_finish = now;
                    unfinished = false;
                    finish(store.as_ref()).await;
                }
            }
            next = rx.recv(), if open && writing.len() < writers => {
                let Some(first) = next else {
                    open = false;
                    continue;
                };
                let mut batch = vec![first];
                // No waiting for company: every outcome here holds a send slot, so a wait would
                // slow the sends. What arrives while a batch commits forms the next one, which
                // keeps batches large at full speed.
                while batch.len() < 512 {
                    match rx.try_recv() {
                        Ok(o) => batch.push(o),
                        Err(_) => break,
                    }
                }
                writing.spawn(write(
                    store.clone(),
                    batch,
                    wake.clone(),
                    health.clone(),
                    shutdown.clone(),
                    grace,
                ));
            }
            // Nothing arrived for FINISH_EVERY after the last commit: close what finished.
            _ = tokio::time::sleep(FINISH_EVERY), if unfinished && writing.is_empty() => {
                unfinished = false;
                last_finish = now_ms();
                finish(store.as_ref()).await;
            }
        }
    }
    finish(store.as_ref()).await;
}

/// Commits one batch, retrying until it works (after `shutdown`, until `grace` has passed); frees
/// the batch's send slots only then.
async fn write(
    store: Arc<dyn Store>,
    batch: Vec<Outcome>,
    wake: Arc<Notify>,
    health: Arc<Health>,
    shutdown: CancellationToken,
    grace: Duration,
) {
    let (updates, slots): (Vec<DeliveryUpdate>, Vec<_>) =
        batch.into_iter().map(|o| (o.update, o.slot)).unzip();
    let requeued = updates.iter().any(|u| !u.state.is_settled());
    let mut tries = 0;
    let mut given_up_at: Option<tokio::time::Instant> = None;
    loop {
        let started = std::time::Instant::now();
        let recorded = store.record(&updates, now_ms()).await;
        crate::metrics::recorded(
            started.elapsed(),
            recorded.is_ok(),
            updates.iter().map(|u| {
                (
                    u.state.as_str(),
                    u.channel.map(|c| c.as_str()).unwrap_or("none"),
                )
            }),
        );
        match recorded {
            Ok(_) => {
                health.set(false, "recording outcomes");
                break;
            }
            Err(e) => {
                tries += 1;
                health.set(true, "recording outcomes");
                tracing::warn!(error = %e, tries, outcomes = updates.len(), "recording outcomes failed; retrying");
                // After shutdown the process is about to go: its leases expire after it and the
                // deliveries are sent again under the same idempotency key.
                if shutdown.is_cancelled() {
                    let deadline =
                        *given_up_at.get_or_insert_with(|| tokio::time::Instant::now() + grace);
                    if tokio::time::Instant::now() >= deadline {
                        tracing::error!(
                            outcomes = updates.len(),
                            "outcomes not recorded at shutdown; these deliveries will be sent again after their lease"
                        );
                        break;
                    }
                }
                tokio::time::sleep(backoff(tries)).await;
            }
        }
    }
    // The slots free only now: a crash before this point re-sends at most these.
    drop(slots);
    if requeued {
        wake.notify_one();
    }
}

async fn finish(store: &dyn Store) {
    match store.finish_runs(now_ms()).await {
        Ok(done) => {
            for c in done {
                tracing::info!(campaign = c, "campaign done");
            }
        }
        Err(e) => tracing::error!(error = %e, "closing finished runs failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(6), Duration::from_millis(3_200));
        assert_eq!(backoff(7), Duration::from_millis(5_000));
        assert_eq!(backoff(40), Duration::from_millis(5_000));
    }
}
