//! What webhooks brought in: stored events by provider and outcome (unknown messages are counted here,
//! not refused, so a provider never retries them).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::error::AppError;
use super::{Actor, AppState};

pub fn router() -> Router<AppState> {
    Router::new().route("/webhooks/stats", get(stats))
}

/// Provider events concern the whole installation: operators only.
async fn stats(actor: Actor, State(s): State<AppState>) -> Result<Json<Value>, AppError> {
    actor.require_operator()?;
    Ok(Json(json!({"events": s.store.webhook_counts().await?})))
}
