//! Message templates: one minijinja body per channel, checked for syntax and variable names on
//! creation, and the shared library that a Sở or Phòng publishes for every node below it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::auth::{ANY, APPROVER, AUTHOR};
use super::error::{ApiJson, ApiPath, ApiQuery, AppError};
use super::{Actor, AppState};
use crate::clock::now_ms;
use crate::domain::Channel;
use crate::domain::campaign::{NewTemplate, Template};
use crate::render::{check_renders, check_template};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/templates", post(create))
        .route("/templates/{id}", get(one))
        .route("/templates/{id}/publish", post(publish))
        .route("/library", get(library))
}

async fn create(
    actor: Actor,
    State(s): State<AppState>,
    ApiJson(t): ApiJson<NewTemplate>,
) -> Result<(StatusCode, Json<Template>), AppError> {
    Ok((StatusCode::CREATED, Json(create_as(&actor, &s, &t).await?)))
}

/// Writing a template, as the API and the pages do it: checked for syntax and rendered for sample
/// people before it is stored.
pub(crate) async fn create_as(
    actor: &Actor,
    s: &AppState,
    t: &NewTemplate,
) -> Result<Template, AppError> {
    actor.require(AUTHOR)?;
    actor.target_org(s, t.org_id, "org_id").await?;
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
    // Off the runtime: each render is bounded, but a template is rendered for several people.
    let bodies = t.bodies.clone();
    tokio::task::spawn_blocking(move || check_renders(&bodies))
        .await
        .map_err(|_| {
            AppError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "lỗi nội bộ khi kiểm tra mẫu tin",
            )
        })??;
    let created = s
        .store
        .create_template(t, Some(actor.0.user_id), now_ms())
        .await?;
    actor
        .audit(
            s,
            Some(t.org_id),
            "template.create",
            "template",
            Some(created.id),
            json!({}),
        )
        .await;
    Ok(created)
}

async fn one(
    actor: Actor,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Template>, AppError> {
    actor.require(ANY)?;
    Ok(Json(actor.visible_template(&s, id).await?))
}

#[derive(Deserialize)]
struct Publish {
    #[serde(default)]
    topics: Vec<String>,
}

/// Puts a template of the approver's subtree into the shared library: its text is approved once
/// here, and every node below may use it unedited.
async fn publish(
    actor: Actor,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(p): ApiJson<Publish>,
) -> Result<Json<Template>, AppError> {
    Ok(Json(publish_as(&actor, &s, id, &p.topics).await?))
}

/// Publishing a template of the user's subtree to the shared library, as the API and the pages do
/// it: approvers only; content from above may be read, not republished.
pub(crate) async fn publish_as(
    actor: &Actor,
    s: &AppState,
    id: i64,
    topics: &[String],
) -> Result<Template, AppError> {
    actor.require(APPROVER)?;
    let t = actor.visible_template(s, id).await?;
    let org = s.store.get_org(t.org_id).await?;
    if !actor.0.covers(&org.path) {
        // Library content from above may be read, not republished.
        return Err(AppError::not_found("template"));
    }
    let mut topics: Vec<String> = topics
        .iter()
        .map(|t| t.trim().to_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    topics.sort();
    topics.dedup();
    if topics.iter().any(|t| t.chars().count() > 60) || topics.len() > 20 {
        return Err(AppError::field(
            "topics",
            "tối đa 20 chủ đề, mỗi chủ đề tối đa 60 ký tự",
        ));
    }
    if !s
        .store
        .publish_template(id, actor.0.user_id, &topics, now_ms())
        .await?
    {
        return Err(AppError::conflict(
            "mẫu tin này đã có trong thư viện dùng chung",
        ));
    }
    actor
        .audit(
            s,
            Some(t.org_id),
            "template.publish",
            "template",
            Some(id),
            json!({"topics": topics}),
        )
        .await;
    Ok(s.store.get_template(id).await?)
}

#[derive(Deserialize)]
struct LibraryQuery {
    topic: Option<String>,
}

/// The library content the user's node may use: published at its node or above.
async fn library(
    actor: Actor,
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<LibraryQuery>,
) -> Result<Json<Vec<Template>>, AppError> {
    actor.require(ANY)?;
    let topic = q.topic.as_deref().map(|t| t.trim().to_lowercase());
    Ok(Json(
        s.store.library(&actor.0.org_path, topic.as_deref()).await?,
    ))
}
