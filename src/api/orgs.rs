//! Organisations: the Sở -> Phòng -> school -> class tree.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::error::{ApiJson, ApiPath, ApiQuery, AppError};
use super::{Actor, AppState};
use crate::clock::now_ms;
use crate::domain::org::{NewOrg, Org};
use crate::domain::validation::ValidationError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orgs", post(create).get(list))
        .route("/orgs/{id}", get(one))
}

async fn create(
    _actor: Actor,
    State(s): State<AppState>,
    ApiJson(o): ApiJson<NewOrg>,
) -> Result<(StatusCode, Json<Org>), AppError> {
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
    Ok((StatusCode::CREATED, Json(org)))
}

#[derive(Deserialize)]
struct ListQuery {
    parent_id: Option<i64>,
}

async fn list(
    _actor: Actor,
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<Org>>, AppError> {
    Ok(Json(s.store.list_orgs(q.parent_id).await?))
}

async fn one(
    _actor: Actor,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Org>, AppError> {
    Ok(Json(s.store.get_org(id).await?))
}
