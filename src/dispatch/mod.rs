//! The dispatcher: claim due deliveries in short transactions with a lease, rate-limit per provider,
//! send outside the transaction with bounded concurrency, and record outcomes in batched writes.

pub mod decide;
pub mod plan;
pub mod registry;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;
use crate::config::DispatchConfig;
use crate::domain::{Channel, Millis};
use crate::links::Links;
use crate::store::{DeliveryUpdate, Store};
use decide::{Attempt, RetryPolicy, decide};
use plan::{Plans, prepare};
use registry::Registry;

pub struct Dispatcher {
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    links: Arc<Links>,
    cfg: DispatchConfig,
    plans: Plans,
    /// Notified when work arrives (a run fanned out, a delivery re-queued), so nothing waits for a poll.
    pub wake: Arc<Notify>,
}

fn policy(cfg: &DispatchConfig) -> RetryPolicy {
    RetryPolicy {
        max_attempts: cfg.max_attempts.max(1),
        base_ms: cfg.retry_base_ms,
        max_ms: cfg.retry_max_ms,
    }
}

impl Dispatcher {
    pub fn new(
        store: Arc<dyn Store>,
        registry: Arc<Registry>,
        links: Arc<Links>,
        cfg: DispatchConfig,
        wake: Arc<Notify>,
    ) -> Self {
        Dispatcher {
            store,
            registry,
            links,
            cfg,
            plans: Plans::default(),
            wake,
        }
    }

    /// Runs until `shutdown`; then stops claiming, lets in-flight sends finish (up to the grace
    /// period; leases cover the rest) and flushes their outcomes.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let sem = Arc::new(Semaphore::new(self.cfg.concurrency.max(1)));
        let (out_tx, out_rx) = mpsc::channel::<DeliveryUpdate>(self.cfg.concurrency.max(1) * 4);
        let completer = tokio::spawn(complete(self.store.clone(), out_rx, self.wake.clone()));
        let mut inflight = JoinSet::new();
        let mut blocked: HashMap<Channel, Millis> = HashMap::new();
        let policy = policy(&self.cfg);
        let lease_ms = (self.cfg.lease_seconds.max(1) * 1000) as i64;

        while !shutdown.is_cancelled() {
            while inflight.try_join_next().is_some() {}
            let free = sem.available_permits();
            if free == 0 {
                tokio::select! {
                    _ = inflight.join_next() => {}
                    _ = shutdown.cancelled() => break,
                }
                continue;
            }
            let now = now_ms();
            blocked.retain(|_, until| *until > now);
            let skip: Vec<Channel> = blocked.keys().copied().collect();
            let claimed = match self
                .store
                .claim(
                    free.min(self.cfg.batch_size) as i64,
                    now,
                    now + lease_ms,
                    &skip,
                )
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "claim failed");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shutdown.cancelled() => break,
                    }
                    continue;
                }
            };
            if claimed.is_empty() {
                self.idle(&shutdown, &blocked).await;
                continue;
            }
            let mut released: HashMap<Millis, Vec<i64>> = HashMap::new();
            for d in claimed {
                let plan = match self.plans.get(self.store.as_ref(), d.campaign_id).await {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::error!(campaign = d.campaign_id, error = %e, "cannot build the campaign's plan");
                        let attempt = Attempt::Unsendable {
                            reason: crate::domain::delivery::Reason::RenderFailed,
                            detail: e,
                        };
                        let _ = out_tx
                            .send(decide(&d, &[], attempt, &policy, now, 0.0))
                            .await;
                        continue;
                    }
                };
                if let Some(until) = d.channel.and_then(|c| blocked.get(&c)) {
                    released.entry(*until).or_default().push(d.id);
                    continue;
                }
                let route = d.channel.and_then(|c| self.registry.route(c));
                let provider_name = route
                    .map(|r| r.provider.name().to_string())
                    .unwrap_or_default();
                let msg = match prepare(&d, &plan, route, &self.links, &provider_name) {
                    Ok(m) => m,
                    Err(attempt) => {
                        let _ = out_tx
                            .send(decide(&d, &plan.channels, attempt, &policy, now, 0.0))
                            .await;
                        continue;
                    }
                };
                let Some(route) = route else { continue };
                if let Some(limiter) = &route.limiter
                    && let Err(not_until) = limiter.check()
                {
                    // Check and reschedule: the delivery goes back to the store instead of a parked task.
                    let wait = not_until.wait_time_from(governor::clock::Clock::now(
                        &governor::clock::DefaultClock::default(),
                    ));
                    let until = now + wait.as_millis().max(1) as i64;
                    blocked.insert(msg.channel, until);
                    released.entry(until).or_default().push(d.id);
                    continue;
                }
                let Ok(permit) = sem.clone().acquire_owned().await else {
                    break;
                };
                let provider = route.provider.clone();
                let out = out_tx.clone();
                let order = plan.channels.clone();
                let policy = policy.clone();
                inflight.spawn(async move {
                    let attempt = match provider.send(&msg).await {
                        Ok(accepted) => Attempt::Sent { accepted, segments: msg.sms.map(|s| s.segments as i64) },
                        Err(e) => {
                            let to = providers::mask_address(&msg.to);
                            match &e {
                                providers::SendError::Permanent { .. } => {
                                    tracing::debug!(delivery = d.id, provider = provider.name(), %to, error = %e, "send refused")
                                }
                                _ => tracing::warn!(delivery = d.id, provider = provider.name(), %to, error = %e, "send failed"),
                            }
                            Attempt::Failed(e)
                        }
                    };
                    let jitter = rand::rng().random::<f64>();
                    let _ = out.send(decide(&d, &order, attempt, &policy, now_ms(), jitter)).await;
                    drop(permit);
                });
            }
            for (at, ids) in released {
                if let Err(e) = self.store.release(&ids, at).await {
                    tracing::error!(error = %e, "release failed; leases will expire instead");
                }
            }
        }

        let grace = Duration::from_secs(self.cfg.shutdown_grace_seconds);
        let n = inflight.len();
        if n > 0 {
            tracing::info!(in_flight = n, "waiting for in-flight sends");
        }
        if tokio::time::timeout(grace, async {
            while inflight.join_next().await.is_some() {}
        })
        .await
        .is_err()
        {
            tracing::warn!(
                "in-flight sends did not finish in time; their leases will expire and they will be retried"
            );
            inflight.abort_all();
        }
        drop(out_tx);
        let _ = completer.await;
    }

    /// Sleeps until woken, the next delivery falls due, a blocked channel opens, or the poll interval.
    async fn idle(&self, shutdown: &CancellationToken, blocked: &HashMap<Channel, Millis>) {
        let now = now_ms();
        let mut wait = self.cfg.poll_interval_ms as i64;
        if let Ok(Some(due)) = self.store.next_due_at().await {
            wait = wait.min(due - now);
        }
        if let Some(open) = blocked.values().min() {
            wait = wait.min(open - now);
        }
        let wait = Duration::from_millis(wait.max(1) as u64);
        tokio::select! {
            _ = self.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.cancelled() => {}
        }
    }
}

/// Writes outcomes in batches (one transaction each), then closes finished runs.
async fn complete(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<DeliveryUpdate>,
    wake: Arc<Notify>,
) {
    let mut last_finish = 0;
    loop {
        let Some(first) = rx.recv().await else { break };
        let mut batch = vec![first];
        while batch.len() < 512 {
            match rx.try_recv() {
                Ok(u) => batch.push(u),
                Err(_) => break,
            }
        }
        let requeued = batch.iter().any(|u| !u.state.is_settled());
        let mut tries = 0;
        while let Err(e) = store.record(&batch, now_ms()).await {
            tries += 1;
            tracing::error!(error = %e, tries, "recording outcomes failed");
            if tries >= 5 {
                // Their leases expire and the deliveries are sent again under the same idempotency key.
                break;
            }
            tokio::time::sleep(Duration::from_millis(200 * tries)).await;
        }
        if requeued {
            wake.notify_one();
        }
        let now = now_ms();
        if now - last_finish >= 200 || rx.is_empty() {
            last_finish = now;
            finish(store.as_ref()).await;
        }
    }
    finish(store.as_ref()).await;
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
