//! The audit log: who did what to which object, readable by admins of the node and above.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::ADMIN;
use super::error::{ApiQuery, AppError};
use super::{Actor, AppState};

pub fn router() -> Router<AppState> {
    Router::new().route("/audit", get(list))
}

#[derive(Deserialize)]
struct Query {
    /// A node of the user's subtree; default the user's own node.
    org_id: Option<i64>,
    /// Entries older than this id (paging, newest first).
    before: Option<i64>,
    limit: Option<i64>,
}

async fn list(
    actor: Actor,
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<Query>,
) -> Result<Json<Value>, AppError> {
    actor.require(ADMIN)?;
    let path = match q.org_id {
        Some(id) => actor.visible_org(&s, id).await?.path,
        None => actor.0.org_path.clone(),
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let rows = s.store.list_audit(&path, q.before, limit).await?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    Ok(Json(json!({"entries": rows, "next_before": next})))
}
