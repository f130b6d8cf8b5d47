//! Message templates: one minijinja body per channel, checked for syntax and variable names on creation.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};

use super::error::{ApiJson, ApiPath, AppError};
use super::{Actor, AppState};
use crate::clock::now_ms;
use crate::domain::Channel;
use crate::domain::campaign::{NewTemplate, Template};
use crate::render::check_template;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/templates", post(create))
        .route("/templates/{id}", get(one))
}

async fn create(
    _actor: Actor,
    State(s): State<AppState>,
    ApiJson(t): ApiJson<NewTemplate>,
) -> Result<(StatusCode, Json<Template>), AppError> {
    if t.name.trim().is_empty() {
        return Err(AppError::field("name", "tên mẫu tin không được để trống"));
    }
    if !Channel::ALL.iter().any(|c| t.bodies.has_channel(*c)) {
        return Err(AppError::field(
            "sms_text",
            "mẫu tin cần nội dung cho ít nhất một kênh",
        ));
    }
    check_template(&t.bodies)?;
    s.store
        .get_org(t.org_id)
        .await
        .map_err(|_| AppError::field("org_id", "đơn vị không tồn tại"))?;
    Ok((
        StatusCode::CREATED,
        Json(s.store.create_template(&t, now_ms()).await?),
    ))
}

async fn one(
    _actor: Actor,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Template>, AppError> {
    Ok(Json(s.store.get_template(id).await?))
}
