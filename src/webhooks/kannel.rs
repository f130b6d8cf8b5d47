//! Kannel delivery reports (`dlr-url`): type 1 delivered, 2 or 16 not delivered (the person moves to
//! their next channel), 4 and 8 intermediate. The URL carries our signature over the delivery id.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

use crate::api::AppState;
use crate::clock::now_ms;
use crate::dispatch::decide::fall_back;
use crate::domain::delivery::Reason;
use crate::store::Receipt;

#[derive(Deserialize)]
pub struct Report {
    id: Option<String>,
    sig: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    reply: Option<String>,
}

pub async fn report(
    State(s): State<AppState>,
    Path(provider): Path<String>,
    Query(r): Query<Report>,
) -> (StatusCode, &'static str) {
    if s.registry
        .route(crate::domain::Channel::Sms)
        .filter(|r| r.wants_callback && r.provider.name() == provider)
        .is_none()
    {
        return (StatusCode::NOT_FOUND, "unknown provider");
    }
    let (Some(id), Some(sig)) = (
        r.id.as_deref().and_then(|i| i.parse::<i64>().ok()),
        r.sig.as_deref(),
    ) else {
        return (StatusCode::UNAUTHORIZED, "missing id or signature");
    };
    if !s.links.verify(id, sig) {
        tracing::warn!(
            delivery = id,
            "delivery report with a bad signature refused"
        );
        return (StatusCode::UNAUTHORIZED, "bad signature");
    }
    let kind: u32 = r.kind.as_deref().and_then(|k| k.parse().ok()).unwrap_or(0);
    let result = match kind {
        1 => s
            .store
            .apply_receipt(id, Receipt::Delivered, now_ms())
            .await
            .map(|_| ()),
        2 | 16 => undelivered(&s, id, r.reply.as_deref().unwrap_or("")).await,
        _ => Ok(()),
    };
    match result {
        Ok(()) => (StatusCode::OK, "ok"),
        Err(e) => {
            tracing::error!(delivery = id, error = %e, "recording a delivery report failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "retry later")
        }
    }
}

/// The SMS did not reach the phone: permanent for this channel, so the person falls back.
async fn undelivered(s: &AppState, id: i64, reply: &str) -> Result<(), crate::store::StoreError> {
    let Some(d) = s.store.load_for_receipt(id).await? else {
        tracing::info!(
            delivery = id,
            "failure report for a delivery no longer awaiting one"
        );
        return Ok(());
    };
    let campaign = s.store.get_campaign(d.campaign_id).await?;
    let detail = if reply.is_empty() {
        "not delivered to the phone".to_string()
    } else {
        format!("not delivered: {reply}")
    };
    let u = fall_back(
        &d,
        &campaign.channels,
        Reason::Undelivered,
        &detail,
        d.attempts,
        now_ms(),
    );
    let requeued = u.state == crate::domain::delivery::DeliveryState::Queued;
    s.store.record(&[u], now_ms()).await?;
    if requeued {
        // The run may already be done: the person being tried again keeps it (and its campaign) open.
        s.store.reopen_run(d.run_id, now_ms()).await?;
        s.dispatch_wake.notify_one();
    }
    Ok(())
}
