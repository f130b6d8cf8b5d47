//! What every receipt handler does with a delivery once it knows which one: move it forward, or, when
//! the provider says it never reached the person, send the person on to their next channel.

use axum::http::StatusCode;

use crate::api::AppState;
use crate::clock::now_ms;
use crate::dispatch::decide::fall_back;
use crate::domain::delivery::{AttemptRef, DeliveryState, Reason};
use crate::store::{Receipt, StoreError};

/// Moves a delivery forward; false when it was unknown, already further on (a replay, a late
/// "delivered" after "read"), or no longer on the attempt the report is about.
pub async fn forward(
    s: &AppState,
    id: i64,
    at: Option<AttemptRef>,
    r: Receipt,
) -> Result<bool, StoreError> {
    s.store.apply_receipt(id, at, r, now_ms()).await
}

/// The message did not reach the person: permanent for this channel, so the person falls back.
/// False when the delivery was not awaiting a receipt.
pub async fn undelivered(
    s: &AppState,
    id: i64,
    at: Option<AttemptRef>,
    detail: &str,
) -> Result<bool, StoreError> {
    let Some(d) = s.store.load_for_receipt(id, at).await? else {
        tracing::info!(
            delivery = id,
            "failure report for a delivery (or an attempt) no longer awaiting one"
        );
        return Ok(false);
    };
    let campaign = s.store.get_campaign(d.campaign_id).await?;
    let u = fall_back(
        &d,
        &campaign.channels,
        Reason::Undelivered,
        detail,
        d.attempts,
        now_ms(),
    );
    let requeued = u.state == DeliveryState::Queued;
    let applied = s.store.record(&[u], now_ms()).await? == 1;
    if applied && requeued {
        // The run may already be done: the person being tried again keeps it (and its campaign) open.
        s.store.reopen_run(d.run_id, now_ms()).await?;
        s.dispatch_wake.notify_one();
    }
    Ok(applied)
}

/// The delivery and attempt of a signed callback URL, or why it is refused.
pub fn signed_id(
    s: &AppState,
    id: Option<&str>,
    at: Option<&str>,
    sig: Option<&str>,
) -> Result<(i64, AttemptRef), &'static str> {
    let (Some(id), Some(at), Some(sig)) = (
        id.and_then(|i| i.parse::<i64>().ok()),
        at.and_then(AttemptRef::parse),
        sig,
    ) else {
        return Err("missing id, attempt or signature");
    };
    if !s.links.verify(id, at, sig) {
        tracing::warn!(
            delivery = id,
            "delivery report with a bad signature refused"
        );
        return Err("bad signature");
    }
    Ok((id, at))
}

/// The provider's answer once a report was applied: 200, or 500 so that it sends the report again.
pub fn answer<T>(result: Result<T, StoreError>, provider: &str) -> (StatusCode, &'static str) {
    match result {
        Ok(_) => (StatusCode::OK, "ok"),
        Err(e) => {
            tracing::error!(provider, error = %e, "recording a delivery report failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "retry later")
        }
    }
}
