//! What every receipt handler does with a delivery once it knows which one: move it forward, or, when
//! the provider says it never reached the person, send the person on to their next channel.

use axum::http::StatusCode;

use crate::api::AppState;
use crate::clock::now_ms;
use crate::dispatch::decide::fall_back;
use crate::domain::delivery::{DeliveryState, Reason};
use crate::store::{Receipt, StoreError};

/// Moves a delivery forward; false when it was unknown or already further on (a replay, a late
/// "delivered" after "read").
pub async fn forward(s: &AppState, id: i64, r: Receipt) -> Result<bool, StoreError> {
    s.store.apply_receipt(id, r, now_ms()).await
}

/// The message did not reach the person: permanent for this channel, so the person falls back.
/// False when the delivery was not awaiting a receipt.
pub async fn undelivered(s: &AppState, id: i64, detail: &str) -> Result<bool, StoreError> {
    let Some(d) = s.store.load_for_receipt(id).await? else {
        tracing::info!(
            delivery = id,
            "failure report for a delivery no longer awaiting one"
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

/// The delivery id of a signed callback URL, or why it is refused.
pub fn signed_id(s: &AppState, id: Option<&str>, sig: Option<&str>) -> Result<i64, &'static str> {
    let (Some(id), Some(sig)) = (id.and_then(|i| i.parse::<i64>().ok()), sig) else {
        return Err("missing id or signature");
    };
    if !s.links.verify(id, sig) {
        tracing::warn!(
            delivery = id,
            "delivery report with a bad signature refused"
        );
        return Err("bad signature");
    }
    Ok(id)
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
