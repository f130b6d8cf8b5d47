//! Organisations: the Sở -> Phòng -> school -> class tree, and each node's approval policy.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::auth::{ADMIN, ANY, forbidden};
use super::error::{ApiJson, ApiPath, ApiQuery, AppError};
use super::{Actor, AppState};
use crate::clock::now_ms;
use crate::domain::org::{NewOrg, Org};
use crate::domain::validation::ValidationError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orgs", post(create).get(list))
        .route("/orgs/{id}", get(one))
        .route("/orgs/{id}/policy", post(policy))
}

/// Admins add nodes below their own; only operators add roots.
async fn create(
    actor: Actor,
    State(s): State<AppState>,
    ApiJson(o): ApiJson<NewOrg>,
) -> Result<(StatusCode, Json<Org>), AppError> {
    actor.require(ADMIN)?;
    match o.parent_id {
        Some(p) => {
            actor.target_org(&s, p, "parent_id").await?;
        }
        None if !actor.0.is_operator() => return Err(forbidden()),
        None => {}
    }
    let mut errs = ValidationError::default();
    if o.code.trim().is_empty() {
        errs.push("code", "mã đơn vị không được để trống");
    }
    if o.name.trim().is_empty() {
        errs.push("name", "tên đơn vị không được để trống");
    }
    errs.into_result(())?;
    let org = s
        .store
        .create_org(&o, now_ms())
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Conflict(_) => {
                AppError::conflict(format!("an organisation with code {:?} exists", o.code))
            }
            crate::store::StoreError::InvalidReference(_) => {
                AppError::field("parent_id", "đơn vị cấp trên không tồn tại")
            }
            e => e.into(),
        })?;
    actor
        .audit(
            &s,
            Some(org.id),
            "org.create",
            "org",
            Some(org.id),
            json!({"kind": org.kind, "parent_id": org.parent_id}),
        )
        .await;
    Ok((StatusCode::CREATED, Json(org)))
}

#[derive(Deserialize)]
struct ListQuery {
    parent_id: Option<i64>,
}

/// The children of a node, or without `parent_id` every node the user can see.
async fn list(
    actor: Actor,
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<Org>>, AppError> {
    actor.require(ANY)?;
    if let Some(p) = q.parent_id {
        actor.visible_org(&s, p).await?;
    }
    let mut orgs = s.store.list_orgs(q.parent_id).await?;
    orgs.retain(|o| actor.0.covers(&o.path));
    Ok(Json(orgs))
}

async fn one(
    actor: Actor,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Org>, AppError> {
    actor.require(ANY)?;
    Ok(Json(actor.visible_org(&s, id).await?))
}

#[derive(Deserialize)]
struct Policy {
    self_approval: bool,
}

/// Whether a node's approvers may approve their own campaigns. Set by an admin above the node, so a
/// node cannot loosen its own control.
async fn policy(
    actor: Actor,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(p): ApiJson<Policy>,
) -> Result<Json<Org>, AppError> {
    actor.require(ADMIN)?;
    let org = actor.visible_org(&s, id).await?;
    if !actor.0.strictly_above(&org.path) {
        return Err(forbidden());
    }
    let org = s.store.set_self_approval(id, p.self_approval).await?;
    actor
        .audit(
            &s,
            Some(id),
            "org.policy",
            "org",
            Some(id),
            json!({"self_approval": p.self_approval}),
        )
        .await;
    Ok(Json(org))
}
