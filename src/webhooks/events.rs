//! Stored webhook events: written before the provider gets its 200 (so a burst never makes Zalo wait
//! or retry), then processed in order by one background task, woken when an event arrives.

use std::time::Duration;

use axum::http::StatusCode;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::api::AppState;
use crate::clock::now_ms;
use crate::dispatch::registry::WebhookAuth;
use crate::store::EventOutcome;

/// Stores a verified event; a replay of the same body is stored once.
pub async fn store(s: &AppState, provider: &str, body: &[u8]) -> (StatusCode, &'static str) {
    let Ok(text) = std::str::from_utf8(body) else {
        return (StatusCode::BAD_REQUEST, "body is not UTF-8");
    };
    let digest = hex::encode(Sha256::digest(body));
    match s
        .store
        .insert_webhook_event(provider, &digest, text, now_ms())
        .await
    {
        Ok(new) => {
            if new {
                s.webhook_wake.notify_one();
            } else {
                tracing::debug!(provider, "replayed webhook event ignored");
            }
            (StatusCode::OK, "ok")
        }
        Err(e) => {
            tracing::error!(provider, error = %e, "storing a webhook event failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "retry later")
        }
    }
}

/// How long a claimed batch of events stays this process's: far longer than processing 200 events
/// takes, short enough that a crashed instance's events are soon processed by another.
const EVENT_LEASE_MS: i64 = 60_000;

/// Processes everything stored, then waits for more, until shutdown.
pub async fn run(s: AppState, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        match drain(&s).await {
            Ok(0) => {
                tokio::select! {
                    _ = s.webhook_wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                    _ = shutdown.cancelled() => {}
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "processing webhook events failed");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.cancelled() => {}
                }
            }
        }
    }
}

/// Processes one batch of stored events; returns how many.
pub async fn drain(s: &AppState) -> Result<usize, crate::store::StoreError> {
    // Leased to this process: another instance draining at the same time gets other events, and one
    // that died mid-batch leaves its events to the others once the lease lapses.
    let now = now_ms();
    let events = s
        .store
        .claim_webhook_events(200, now, now + EVENT_LEASE_MS)
        .await?;
    for e in &events {
        let outcome = match s.registry.webhooks.get(&e.provider) {
            Some(WebhookAuth::Zalo { .. }) => super::zalo::process(s, &e.body).await?,
            Some(WebhookAuth::Facebook { .. }) => super::facebook::process(s, &e.body).await?,
            // The provider left the config since the event came in.
            _ => EventOutcome::Ignored,
        };
        if outcome == EventOutcome::Unknown {
            tracing::info!(provider = %e.provider, event = e.id, "webhook event names nothing Loa knows (or nothing new)");
        }
        s.store
            .finish_webhook_event(e.id, outcome, now_ms())
            .await?;
        crate::metrics::webhook_event(&e.provider, outcome.as_str());
    }
    Ok(events.len())
}
