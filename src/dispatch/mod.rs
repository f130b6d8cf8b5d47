//! The dispatcher: claim due deliveries in short transactions with a lease, rate-limit per provider,
//! send outside the transaction with bounded concurrency, and record outcomes in batched writes.

pub mod complete;
pub mod decide;
pub mod limit;
pub mod plan;
pub mod registry;
pub mod tokens;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use crate::clock::now_ms;
use crate::config::DispatchConfig;
use crate::domain::schedule::QuietHours;
use crate::domain::{Channel, Millis};
use crate::links::Links;
use crate::store::{Claimed, Store};
use complete::{Health, Outcome, backoff, complete};
use decide::{Attempt, RetryPolicy, decide};
use plan::{Plans, prepare};
use registry::Registry;

/// A claim running on its own task while the previous batch is sent.
type ClaimTask = tokio::task::JoinHandle<crate::store::Result<Vec<Claimed>>>;

pub struct Dispatcher {
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    links: Arc<Links>,
    cfg: DispatchConfig,
    quiet: QuietPolicy,
    plans: Plans,
    /// Channels whose provider said "not before" (rate limited, daily quota used up): nothing more is
    /// claimed for them until then, so a campaign does not burn its audience against the refusal.
    closed: Arc<Closed>,
    /// Notified when work arrives (a run fanned out, a delivery re-queued), so nothing waits for a poll.
    pub wake: Arc<Notify>,
    /// Whether the store takes writes: while it does not, nothing is claimed.
    health: Arc<Health>,
    /// Deliveries to hand back to the store (with the time they fall due) whose release failed:
    /// this process still holds them, so nobody else would ever send them; retried until it works.
    unreleased: std::sync::Mutex<Vec<(i64, Millis)>>,
}

/// Quiet hours as the dispatcher applies them: the default for nodes that set none, and whether
/// email is held too.
#[derive(Clone, Copy, Debug, Default)]
pub struct QuietPolicy {
    pub default: Option<QuietHours>,
    pub hold_email: bool,
}

impl QuietPolicy {
    pub fn from_config(c: &crate::config::ScheduleConfig) -> anyhow::Result<QuietPolicy> {
        Ok(QuietPolicy {
            default: c.default_quiet()?,
            hold_email: c.hold_email,
        })
    }

    /// SMS, Zalo and Messenger wake a phone; email waits in the inbox.
    fn holds(&self, c: Channel) -> bool {
        c != Channel::Email || self.hold_email
    }
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
        quiet: QuietPolicy,
        wake: Arc<Notify>,
    ) -> Self {
        Dispatcher {
            store,
            registry,
            links,
            cfg,
            quiet,
            plans: Plans::default(),
            closed: Arc::default(),
            wake,
            health: Arc::default(),
            unreleased: std::sync::Mutex::default(),
        }
    }

    /// Beats once and takes this process's share of the providers' quotas; returns the live
    /// instances counted (0 if the store could not say).
    async fn join_instances(&self, lease_ms: i64) -> u32 {
        let now = now_ms();
        if let Err(e) = self.store.heartbeat(now, now + lease_ms).await {
            tracing::warn!(error = %e, "first heartbeat not recorded");
        }
        share_quotas(self.store.as_ref(), &self.registry, now).await
    }

    /// Whether the store's writes are failing, as this dispatcher last saw them.
    pub fn health(&self) -> Arc<Health> {
        self.health.clone()
    }

    /// Runs until `shutdown`; then stops claiming, lets in-flight sends finish (up to the grace
    /// period; leases cover the rest) and flushes their outcomes.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let sem = Arc::new(Semaphore::new(self.cfg.concurrency.max(1)));
        // Every outcome in the channel holds a send slot, so it never holds more than `concurrency`.
        let (out_tx, out_rx) = mpsc::channel::<Outcome>(self.cfg.concurrency.max(1));
        // Both end with this task, also when it is aborted (as a crash would end them).
        let completer = AbortOnDropHandle::new(tokio::spawn(complete(
            self.store.clone(),
            out_rx,
            self.wake.clone(),
            self.health.clone(),
            shutdown.clone(),
            Duration::from_secs(self.cfg.shutdown_grace_seconds),
        )));
        let lease = (self.cfg.lease_seconds.max(1) * 1000) as i64;
        // Say who we are before the first claim, and take our share of each provider's quota: when
        // others run on this database, wait until they have seen us and cut theirs (they look
        // every SHARE_EVERY), so that together we never exceed the account's rate. The heartbeat
        // keeps us alive meanwhile.
        let joined = self.join_instances(lease).await;
        // Another instance's fan-out wakes this one at once (PostgreSQL's LISTEN/NOTIFY).
        let watcher = {
            let (store, wake) = (self.store.clone(), self.wake.clone());
            AbortOnDropHandle::new(tokio::spawn(async move { store.watch_work(wake).await }))
        };
        let heartbeat = AbortOnDropHandle::new(tokio::spawn(heartbeat(
            self.store.clone(),
            self.registry.clone(),
            lease,
        )));
        if joined > 1 {
            tokio::select! {
                _ = tokio::time::sleep(SHARE_EVERY * 2) => {}
                _ = shutdown.cancelled() => {}
            }
        }
        let mut claim_failures = 0u32;
        let mut inflight = JoinSet::new();
        let mut held = Held::default();
        let policy = policy(&self.cfg);
        let lease_ms = (self.cfg.lease_seconds.max(1) * 1000) as i64;
        let mut next_claim: Option<ClaimTask> = None;

        while !shutdown.is_cancelled() {
            while inflight.try_join_next().is_some() {}
            self.retry_releases().await;
            if sem.available_permits() == 0 {
                // Slots free when outcomes are recorded, not when sends end.
                tokio::select! {
                    p = sem.acquire() => drop(p),
                    _ = shutdown.cancelled() => break,
                }
                continue;
            }
            // While the store cannot write, wait for it before claiming again: the claim is then the
            // probe (it writes), and the completer's retries are the other.
            if self.health.failing() {
                tokio::select! {
                    _ = self.health.wait_healed(backoff(claim_failures.max(1))) => {}
                    _ = shutdown.cancelled() => break,
                }
            }
            let sent_held = self
                .send_held(&mut held, &sem, &mut inflight, &out_tx, &policy, lease_ms)
                .await;
            // Read from the queues once a turn, not counted at each change: every way out of them
            // (sent, given back, halted, shutdown) is then covered.
            crate::metrics::held(held.len());
            let free = sem.available_permits();
            if free == 0 {
                continue;
            }
            let now = now_ms();
            let (pending, ahead) = match next_claim.take() {
                Some(p) => (p, true),
                None => (self.start_claim(held.busy(), lease_ms), false),
            };
            let claimed = match pending.await {
                Ok(r) => r.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            let mut claimed = match claimed {
                Ok(c) => {
                    if claim_failures > 0 {
                        claim_failures = 0;
                        self.health.set(false, "claiming");
                    }
                    c
                }
                Err(e) => {
                    // The wait before the next claim is the one at the top of the loop.
                    claim_failures += 1;
                    self.health.set(true, "claiming");
                    tracing::warn!(error = %e, tries = claim_failures, "claim failed; backing off");
                    continue;
                }
            };
            // A full batch means more is due: the next claim runs on the store's writer while this
            // one is rendered and sent, so the sends in flight do not drain while the dispatcher
            // waits for it.
            if claimed.len() >= self.batch() {
                next_claim = Some(self.start_claim(held.busy(), lease_ms));
            }
            // A batch claimed ahead waited while the one before it was sent: staff may have paused
            // or cancelled its campaign meanwhile, and nothing of it may leave once they have.
            if ahead && !claimed.is_empty() {
                self.drop_halted(&mut claimed).await;
                if claimed.is_empty() {
                    continue;
                }
            }
            if claimed.is_empty() {
                if sent_held == 0 {
                    let open = match (held.next_open(), self.closed.next_open()) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    self.idle(&shutdown, open).await;
                }
                continue;
            }
            let mut unsent = Vec::new();
            // Deliveries that wait in the store until a time: the end of quiet hours, or the moment a
            // provider that asked Loa to wait opens again.
            let mut later: BTreeMap<Millis, Vec<i64>> = BTreeMap::new();
            let mut to_render = Vec::with_capacity(claimed.len());
            for d in claimed {
                let plan = match self
                    .plans
                    .get(
                        self.store.as_ref(),
                        self.quiet.default,
                        d.campaign_id,
                        d.run_id,
                    )
                    .await
                {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::error!(campaign = d.campaign_id, error = %e, "cannot build the campaign's plan");
                        let attempt = Attempt::Unsendable {
                            reason: crate::domain::delivery::Reason::RenderFailed,
                            detail: e,
                        };
                        let _ = out_tx
                            .send(Outcome {
                                update: decide(&d, &[], attempt, &policy, now, 0.0),
                                slot: None,
                            })
                            .await;
                        continue;
                    }
                };
                // Inside the sender's quiet hours a phone channel waits for the window's end; the
                // rate limiter then spreads the morning's sends.
                if let (Some(q), Some(ch)) = (&plan.quiet, d.channel)
                    && self.quiet.holds(ch)
                    && let Some(at) = q.release_at(now)
                {
                    later.entry(at).or_default().push(d.id);
                    continue;
                }
                to_render.push((d, plan));
            }
            // Rendering runs templates staff wrote: each render is bounded (render/guard.rs), but a
            // batch of them must not hold a runtime thread, so the batch renders on the blocking pool.
            let (registry, links) = (self.registry.clone(), self.links.clone());
            let ids: Vec<i64> = to_render.iter().map(|(d, _)| d.id).collect();
            let rendered = match tokio::task::spawn_blocking(move || {
                to_render
                    .into_iter()
                    .map(|(d, plan)| {
                        let m = prepare(&d, &plan, &registry, &links);
                        (d, plan, m)
                    })
                    .collect::<Vec<_>>()
            })
            .await
            {
                Ok(r) => r,
                Err(e) => {
                    // Only a panic outside the engine gets here (render catches the engine's own):
                    // the batch goes back to the store, to be tried again.
                    tracing::error!(error = %e, "rendering a batch failed");
                    self.give_back(&ids).await;
                    Vec::new()
                }
            };
            for (d, plan, prepared) in rendered {
                let (msg, route) =
                    match prepared.and_then(|msg| match self.registry.route(msg.channel) {
                        Some(r) => Ok((msg, r)),
                        None => Err(Attempt::Unsendable {
                            reason: crate::domain::delivery::Reason::ChannelUnavailable,
                            detail: format!("no provider configured for {}", msg.channel),
                        }),
                    }) {
                        Ok(m) => m,
                        Err(attempt) => {
                            let _ = out_tx
                                .send(Outcome {
                                    update: decide(&d, &plan.channels, attempt, &policy, now, 0.0),
                                    slot: None,
                                })
                                .await;
                            continue;
                        }
                    };
                let item = Ready {
                    d,
                    msg,
                    plan,
                    since: now,
                };
                if let Some(limiter) = &route.limiter {
                    // Behind others of its channel, or over the quota: it waits in memory (its lease
                    // covers it) and goes the moment the limiter allows, without a trip to the store.
                    if held.has(item.msg.channel) || limiter.check().is_err() {
                        crate::metrics::rate_limited(item.msg.channel.as_str());
                        held.push(item);
                        continue;
                    }
                }
                let permit = tokio::select! {
                    p = sem.clone().acquire_owned() => p,
                    _ = shutdown.cancelled() => {
                        unsent.push(item.d.id);
                        continue;
                    }
                };
                let Ok(permit) = permit else { break };
                // Checked once a send slot is free: the send that freed it may be the one whose
                // provider asked Loa to wait (a used-up daily quota), and the rest of the batch must
                // not be spent against that refusal.
                if let Some(at) = self.closed.reopens_at(item.msg.channel) {
                    drop(permit);
                    later.entry(at).or_default().push(item.d.id);
                    continue;
                }
                self.spawn_send(
                    &mut inflight,
                    permit,
                    route.provider.clone(),
                    item,
                    &out_tx,
                    &policy,
                );
            }
            // Claimed but not started because shutdown came first: due again at once.
            self.give_back(&unsent).await;
            for (at, ids) in later {
                self.hand_back(&ids, at).await;
            }
        }

        // Held deliveries, and any claimed ahead, go back to the store at once, so a restart does not
        // wait for their leases.
        self.give_back(&held.drain_ids()).await;
        crate::metrics::held(0);
        if let Some(p) = next_claim
            && let Ok(Ok(ahead)) = p.await
        {
            self.give_back(&ahead.iter().map(|d| d.id).collect::<Vec<_>>())
                .await;
        }
        let grace = Duration::from_secs(self.cfg.shutdown_grace_seconds);
        // Finished sends stay in the set until joined: count only those still running.
        while inflight.try_join_next().is_some() {}
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
        self.retry_releases().await;
        let left = self.unreleased.lock().map(|u| u.len()).unwrap_or(0);
        if left > 0 {
            tracing::warn!(
                deliveries = left,
                "could not hand deliveries back; they are taken over once this process's lease lapses"
            );
        }
        heartbeat.abort();
        watcher.abort();
        // Leases of a process that said goodbye lapse at their own end, not a heartbeat later.
        if let Err(e) = self.store.retire().await {
            tracing::warn!(error = %e, "could not retire this process's lease holder row");
        }
    }

    /// Sends the held deliveries their limiters now allow; returns how many went.
    async fn send_held(
        &self,
        held: &mut Held,
        sem: &Arc<Semaphore>,
        inflight: &mut JoinSet<()>,
        out_tx: &mpsc::Sender<Outcome>,
        policy: &RetryPolicy,
        lease_ms: i64,
    ) -> usize {
        let mut sent = 0;
        let now = now_ms();
        // Anything held for half a lease goes back to the store, where the claim (which skips this
        // channel while something of it is held here) and staff's pause or cancel see it again.
        self.give_back(&held.take_older_than(now - lease_ms / 2))
            .await;
        // Staff may pause or cancel a run whose deliveries wait here: look every 200 ms, so nothing of
        // it leaves once they have.
        if held.halt_check_due(now) {
            let halted = self.halted(held.run_ids()).await;
            if !halted.is_empty() {
                self.give_back(&held.take_runs(&halted)).await;
            }
        }
        for channel in held.busy() {
            // A closed channel's held deliveries stay held; after half a lease they go back to the
            // store, which the claim skips until the channel opens.
            if self.closed.reopens_at(channel).is_some() {
                continue;
            }
            let Some(route) = self.registry.route(channel) else {
                continue;
            };
            let Some(limiter) = &route.limiter else {
                continue;
            };
            while held.has(channel) {
                let Ok(permit) = sem.clone().try_acquire_owned() else {
                    return sent;
                };
                if let Err(wait) = limiter.check() {
                    held.open_at(channel, tokio::time::Instant::now() + wait);
                    break;
                }
                if let Some(item) = held.pop(channel) {
                    self.spawn_send(
                        inflight,
                        permit,
                        route.provider.clone(),
                        item,
                        out_tx,
                        policy,
                    );
                    sent += 1;
                }
            }
        }
        sent
    }

    fn batch(&self) -> usize {
        self.cfg.batch_size.max(1)
    }

    /// Claims a full batch on a task of its own, skipping channels held back or closed. A full batch
    /// even when few permits are free: the rest wait for permits (their leases cover them), and
    /// fewer, larger claims cost far less than many small ones.
    fn start_claim(&self, busy: Vec<Channel>, lease_ms: i64) -> ClaimTask {
        let store = self.store.clone();
        let skip = self.closed.with(busy);
        let limit = self.batch() as i64;
        tokio::spawn(async move {
            let now = now_ms();
            let started = std::time::Instant::now();
            let claimed = store.claim(limit, now, now + lease_ms, &skip).await;
            if let Ok(c) = &claimed {
                crate::metrics::claim(started.elapsed(), c.len());
            }
            claimed
        })
    }

    /// Of these runs (repeats allowed), those paused or closed by staff since their deliveries were
    /// claimed. On a failed lookup none: the deliveries go, as they would have a moment earlier.
    async fn halted(&self, mut runs: Vec<i64>) -> Vec<i64> {
        runs.sort_unstable();
        runs.dedup();
        if runs.is_empty() {
            return runs;
        }
        self.store.halted_runs(&runs).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not check whether claimed runs were halted");
            Vec::new()
        })
    }

    /// Gives back the deliveries of runs paused or closed since they were claimed.
    async fn drop_halted(&self, claimed: &mut Vec<Claimed>) {
        let halted = self
            .halted(claimed.iter().map(|d| d.run_id).collect())
            .await;
        if halted.is_empty() {
            return;
        }
        let (stop, keep) = std::mem::take(claimed)
            .into_iter()
            .partition(|d| halted.contains(&d.run_id));
        *claimed = keep;
        self.give_back(&stop.iter().map(|d| d.id).collect::<Vec<_>>())
            .await;
    }

    /// Returns held deliveries to the store, due now.
    async fn give_back(&self, ids: &[i64]) {
        self.hand_back(ids, now_ms()).await;
    }

    /// Returns deliveries to the store, due at `at`. On failure they are kept and retried: this
    /// process holds their leases, so nobody else would send them while it lives.
    async fn hand_back(&self, ids: &[i64], at: Millis) {
        if ids.is_empty() {
            return;
        }
        if let Err(e) = self.store.release(ids, at).await {
            tracing::warn!(error = %e, deliveries = ids.len(), "handing deliveries back failed; retrying");
            if let Ok(mut u) = self.unreleased.lock() {
                u.extend(ids.iter().map(|id| (*id, at)));
            }
        }
    }

    /// Retries the hand-backs that failed, grouped by due time.
    async fn retry_releases(&self) {
        let pending = match self.unreleased.lock() {
            Ok(mut u) if !u.is_empty() => std::mem::take(&mut *u),
            _ => return,
        };
        let mut by_time: BTreeMap<Millis, Vec<i64>> = BTreeMap::new();
        for (id, at) in pending {
            by_time.entry(at).or_default().push(id);
        }
        for (at, ids) in by_time {
            self.hand_back(&ids, at).await;
        }
    }

    fn spawn_send(
        &self,
        inflight: &mut JoinSet<()>,
        permit: tokio::sync::OwnedSemaphorePermit,
        provider: Arc<dyn providers::Provider>,
        item: Ready,
        out_tx: &mpsc::Sender<Outcome>,
        policy: &RetryPolicy,
    ) {
        let out = out_tx.clone();
        let policy = policy.clone();
        let store = self.store.clone();
        let closed = self.closed.clone();
        inflight.spawn(async move {
            let Ready { d, msg, plan, .. } = item;
            let at = now_ms();
            let started = std::time::Instant::now();
            let sent = {
                // A guard, so a send aborted at the end of the shutdown grace is counted out too.
                let _in_flight = crate::metrics::InFlight::start();
                provider.send(&msg).await
            };
            crate::metrics::send(
                provider.name(),
                msg.channel.as_str(),
                match &sent {
                    Ok(_) => "ok",
                    Err(providers::SendError::Transient { .. }) => "transient",
                    Err(providers::SendError::RateLimited { .. }) => "rate_limited",
                    Err(providers::SendError::Permanent { .. }) => "permanent",
                    Err(providers::SendError::CampaignFault { .. }) => "campaign_fault",
                },
                started.elapsed(),
            );
            let attempt = match sent {
                Ok(accepted) => Attempt::Sent { accepted, segments: msg.sms.map(|s| s.segments as i64), at },
                Err(e) => {
                    // Providers quote the recipient in their texts: masked once here, before the
                    // error is logged or becomes a channel pause (`decide` masks what is stored).
                    let e = e.masked(&d.addresses.known());
                    let to = providers::mask_address(&msg.to);
                    match &e {
                        providers::SendError::Permanent { .. } => {
                            tracing::debug!(delivery = d.id, provider = provider.name(), %to, error = %e, "send refused")
                        }
                        _ => tracing::warn!(delivery = d.id, provider = provider.name(), %to, error = %e, "send failed"),
                    }
                    match &e {
                        providers::SendError::CampaignFault { reason } => {
                            pause(store.as_ref(), &d, msg.channel, provider.name(), reason).await
                        }
                        providers::SendError::RateLimited { retry_after: Some(wait), .. } => {
                            closed.close(msg.channel, *wait)
                        }
                        _ => {}
                    }
                    Attempt::Failed(e)
                }
            };
            let jitter = rand::rng().random::<f64>();
            let update = decide(&d, &plan.channels, attempt, &policy, now_ms(), jitter);
            // The slot stays taken until the completer has committed the outcome.
            let _ = out.send(Outcome { update, slot: Some(permit) }).await;
        });
    }

    /// Sleeps until woken, the next delivery falls due, a held channel's limiter opens, or the poll
    /// interval passes.
    async fn idle(&self, shutdown: &CancellationToken, open: Option<tokio::time::Instant>) {
        let now = now_ms();
        let mut wait = self.cfg.poll_interval_ms as i64;
        let mut until = tokio::time::Instant::now();
        if let Some(open) = open {
            // Work is held back by a limiter: what is due is that channel's, and the claim skips it
            // until the limiter opens. Waiting on `next_due_at` here would spin.
            until = open.min(until + Duration::from_millis(wait as u64));
        } else {
            if let Ok(Some(due)) = self.store.next_due_at().await {
                wait = wait.min(due - now);
            }
            until += Duration::from_millis(wait.max(1) as u64);
        }
        tokio::select! {
            _ = self.wake.notified() => {}
            _ = tokio::time::sleep_until(until) => {}
            _ = shutdown.cancelled() => {}
        }
    }
}

/// How often each process recounts the live instances it shares provider quotas with.
const SHARE_EVERY: Duration = Duration::from_secs(1);

/// Keeps this process's row in `instances` alive, three beats per lease, so that the leases it holds
/// are never taken over while it runs, however long its sends wait; and every `SHARE_EVERY` sets
/// each provider's limiter to this process's share of the account's quota.
async fn heartbeat(store: Arc<dyn Store>, registry: Arc<Registry>, lease_ms: i64) {
    let every = Duration::from_millis((lease_ms / 3).max(100) as u64);
    let mut last_beat = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(SHARE_EVERY.min(every)).await;
        let now = now_ms();
        if last_beat.elapsed() >= every {
            match store.heartbeat(now, now + lease_ms).await {
                Ok(()) => last_beat = tokio::time::Instant::now(),
                Err(e) => tracing::warn!(error = %e, "heartbeat not recorded; retrying"),
            }
        }
        share_quotas(store.as_ref(), &registry, now).await;
    }
}

/// Sets every limiter to 1/n of its provider's quota, n the live instances; returns n. Unchanged
/// when the store cannot say (the last share stands).
async fn share_quotas(store: &dyn Store, registry: &Registry, now: Millis) -> u32 {
    match store.live_instances(now).await {
        Ok(n) => {
            let n = u32::try_from(n).unwrap_or(u32::MAX).max(1);
            let mut changed = false;
            for l in registry.limiters() {
                changed |= l.set_share(n);
            }
            if changed {
                tracing::info!(
                    instances = n,
                    "provider quotas shared among the live instances"
                );
            }
            n
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not count the live instances; quota shares unchanged");
            0
        }
    }
}

/// Pauses the channel for the campaign before the delivery goes back to the queue, so that neither
/// it nor the rest of the campaign's people on that channel are claimed again until staff act.
async fn pause(store: &dyn Store, d: &Claimed, channel: Channel, provider: &str, reason: &str) {
    let why = format!("{provider}: {reason}");
    for _ in 0..10 {
        match store
            .pause_channel(d.campaign_id, channel, &why, now_ms())
            .await
        {
            Ok(true) => {
                tracing::warn!(campaign = d.campaign_id, %channel, reason = %why, "channel paused for the campaign");
                return;
            }
            Ok(false) => return,
            Err(e) => {
                // Without the pause the delivery would be claimed and refused again at once.
                tracing::error!(campaign = d.campaign_id, error = %e, "recording a channel pause failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// Channels closed until a time their provider named.
#[derive(Default)]
struct Closed(std::sync::Mutex<HashMap<Channel, tokio::time::Instant>>);

impl Closed {
    fn close(&self, c: Channel, wait: Duration) {
        let until = tokio::time::Instant::now() + wait;
        if let Ok(mut m) = self.0.lock() {
            let e = m.entry(c).or_insert(until);
            *e = (*e).max(until);
        }
        tracing::warn!(channel = %c, wait_s = wait.as_secs(), "provider asked to wait: channel closed");
    }

    /// `busy` plus the channels still closed (forgetting those whose time has come).
    fn with(&self, mut busy: Vec<Channel>) -> Vec<Channel> {
        let now = tokio::time::Instant::now();
        if let Ok(mut m) = self.0.lock() {
            m.retain(|_, until| *until > now);
            busy.extend(
                m.keys()
                    .copied()
                    .filter(|c| !busy.contains(c))
                    .collect::<Vec<_>>(),
            );
        }
        busy
    }

    fn next_open(&self) -> Option<tokio::time::Instant> {
        self.0.lock().ok()?.values().min().copied()
    }

    /// When a closed channel opens again (wall-clock ms), or None if it is open.
    fn reopens_at(&self, c: Channel) -> Option<Millis> {
        let until = *self.0.lock().ok()?.get(&c)?;
        let left = until.checked_duration_since(tokio::time::Instant::now())?;
        Some(now_ms() + left.as_millis() as i64)
    }
}

/// A delivery rendered and ready, waiting for its provider's rate limiter.
struct Ready {
    d: Claimed,
    msg: providers::Message,
    plan: Arc<plan::Plan>,
    since: Millis,
}

/// Deliveries held back by a rate limiter, per channel, in claim order.
#[derive(Default)]
struct Held {
    queues: HashMap<Channel, VecDeque<Ready>>,
    open: HashMap<Channel, tokio::time::Instant>,
    halt_checked_at: Millis,
}

impl Held {
    fn halt_check_due(&mut self, now: Millis) -> bool {
        if now - self.halt_checked_at < 200 || self.queues.values().all(|q| q.is_empty()) {
            return false;
        }
        self.halt_checked_at = now;
        true
    }
    fn run_ids(&self) -> Vec<i64> {
        self.queues
            .values()
            .flat_map(|q| q.iter().map(|r| r.d.run_id))
            .collect()
    }
    /// Removes the held deliveries of these runs; returns their ids.
    fn take_runs(&mut self, runs: &[i64]) -> Vec<i64> {
        let mut ids = Vec::new();
        for q in self.queues.values_mut() {
            q.retain(|r| {
                let halted = runs.contains(&r.d.run_id);
                if halted {
                    ids.push(r.d.id);
                }
                !halted
            });
        }
        ids
    }
    fn has(&self, c: Channel) -> bool {
        self.queues.get(&c).is_some_and(|q| !q.is_empty())
    }
    fn push(&mut self, r: Ready) {
        self.queues.entry(r.msg.channel).or_default().push_back(r);
    }
    fn pop(&mut self, c: Channel) -> Option<Ready> {
        self.queues.get_mut(&c).and_then(|q| q.pop_front())
    }
    fn len(&self) -> usize {
        self.queues.values().map(VecDeque::len).sum()
    }
    /// Channels with something held: the claim skips them until their queue drains.
    fn busy(&self) -> Vec<Channel> {
        self.queues
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(c, _)| *c)
            .collect()
    }
    fn open_at(&mut self, c: Channel, at: tokio::time::Instant) {
        self.open.insert(c, at);
    }
    /// The earliest moment a held channel's limiter allows another send.
    fn next_open(&self) -> Option<tokio::time::Instant> {
        self.open
            .iter()
            .filter(|(c, _)| self.has(**c))
            .map(|(_, t)| *t)
            .min()
    }
    fn take_older_than(&mut self, cutoff: Millis) -> Vec<i64> {
        let mut ids = Vec::new();
        for q in self.queues.values_mut() {
            while q.front().is_some_and(|r| r.since < cutoff) {
                if let Some(r) = q.pop_front() {
                    ids.push(r.d.id);
                }
            }
        }
        ids
    }
    fn drain_ids(&mut self) -> Vec<i64> {
        self.queues
            .drain()
            .flat_map(|(_, q)| q.into_iter().map(|r| r.d.id))
            .collect()
    }
}
