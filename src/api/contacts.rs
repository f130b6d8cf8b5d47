//! Contacts (parents, students, staff), their opt-outs, and guardian links between parents and children.
//! Personal data: only admins of the node or above read or change it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::ADMIN;
use super::error::{ApiJson, ApiPath, AppError};
use super::{Actor, AppState};
use crate::clock::now_ms;
use crate::domain::Channel;
use crate::domain::contact::{Contact, NewContactInput};
use crate::store::StoreError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/contacts", post(create))
        .route("/contacts/{id}", get(one).delete(erase))
        .route("/contacts/{id}/opt-outs", post(opt_out))
        .route("/contacts/{id}/consent", post(consent))
        .route("/guardian-links", post(link))
}

async fn create(
    actor: Actor,
    State(s): State<AppState>,
    ApiJson(input): ApiJson<NewContactInput>,
) -> Result<(StatusCode, Json<Contact>), AppError> {
    actor.require(ADMIN)?;
    let c = input.validate()?;
    actor.target_org(&s, c.org_id, "org_id").await?;
    let contact = s
        .store
        .create_contact(&c, now_ms())
        .await
        .map_err(|e| match e {
            StoreError::InvalidReference(_) => AppError::field("org_id", "đơn vị không tồn tại"),
            StoreError::Conflict(_) => {
                AppError::conflict("a student with this student_code already exists in the school")
            }
            StoreError::Invalid(m) => AppError::field("org_id", m),
            e => e.into(),
        })?;
    actor
        .audit(
            &s,
            Some(contact.org_id),
            "contact.create",
            "contact",
            Some(contact.id),
            json!({"role": contact.role}),
        )
        .await;
    Ok((StatusCode::CREATED, Json(contact)))
}

async fn one(
    actor: Actor,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Contact>, AppError> {
    actor.require(ADMIN)?;
    Ok(Json(actor.visible_contact(&s, id).await?))
}

/// Erasure on request (the person's right under Decree 13/2023 on personal data): nothing personal
/// remains; reports keep anonymous counts.
async fn erase(
    actor: Actor,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, AppError> {
    actor.require(ADMIN)?;
    let c = actor.visible_contact(&s, id).await?;
    if !s.store.erase_contact(id, now_ms()).await? {
        return Err(AppError::not_found("contact"));
    }
    tracing::info!(contact = id, "contact erased");
    actor
        .audit(
            &s,
            Some(c.org_id),
            "contact.erase",
            "contact",
            Some(id),
            json!({}),
        )
        .await;
    Ok(Json(json!({"id": id, "erased": true})))
}

#[derive(Deserialize)]
struct Consent {
    source: String,
    /// Unix ms; now when absent.
    at: Option<i64>,
}

async fn consent(
    actor: Actor,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(c): ApiJson<Consent>,
) -> Result<Json<Contact>, AppError> {
    actor.require(ADMIN)?;
    let contact = actor.visible_contact(&s, id).await?;
    let source = c.source.trim();
    if source.is_empty() || source.len() > 100 {
        return Err(AppError::field(
            "source",
            "cần ghi nguồn đồng ý (tối đa 100 ký tự)",
        ));
    }
    let now = now_ms();
    let updated = s
        .store
        .set_consent(id, source, c.at.unwrap_or(now), now)
        .await?;
    actor
        .audit(
            &s,
            Some(contact.org_id),
            "contact.consent",
            "contact",
            Some(id),
            json!({"source": source}),
        )
        .await;
    Ok(Json(updated))
}

#[derive(Deserialize)]
struct OptOut {
    channel: Channel,
    #[serde(default = "yes")]
    opted_out: bool,
}

fn yes() -> bool {
    true
}

async fn opt_out(
    actor: Actor,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(o): ApiJson<OptOut>,
) -> Result<Json<Contact>, AppError> {
    actor.require(ADMIN)?;
    let contact = actor.visible_contact(&s, id).await?;
    let updated = s
        .store
        .set_opt_out(id, o.channel, o.opted_out, now_ms())
        .await?;
    actor
        .audit(
            &s,
            Some(contact.org_id),
            "contact.opt_out",
            "contact",
            Some(id),
            json!({"channel": o.channel, "opted_out": o.opted_out}),
        )
        .await;
    Ok(Json(updated))
}

#[derive(Deserialize)]
struct Link {
    parent_id: i64,
    student_id: i64,
    relation: Option<String>,
}

async fn link(
    actor: Actor,
    State(s): State<AppState>,
    ApiJson(l): ApiJson<Link>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    actor.require(ADMIN)?;
    // People outside the user's subtree are answered as if they did not exist.
    let parent = actor
        .visible_contact(&s, l.parent_id)
        .await
        .map_err(|_| AppError::field("parent_id", "phụ huynh không tồn tại"))?;
    actor
        .visible_contact(&s, l.student_id)
        .await
        .map_err(|_| AppError::field("student_id", "học sinh không tồn tại"))?;
    s.store
        .link_guardian(l.parent_id, l.student_id, l.relation.as_deref())
        .await
        .map_err(|e| match e {
            StoreError::InvalidReference(m) if m == "student_id" => {
                AppError::field("student_id", "học sinh không tồn tại")
            }
            StoreError::InvalidReference(_) => {
                AppError::field("parent_id", "phụ huynh không tồn tại")
            }
            StoreError::Invalid(m) if m.starts_with("student_id") => {
                AppError::field("student_id", "người này không phải học sinh")
            }
            StoreError::Invalid(_) => {
                AppError::field("parent_id", "người này không phải phụ huynh")
            }
            e => e.into(),
        })?;
    actor
        .audit(
            &s,
            Some(parent.org_id),
            "guardian.link",
            "contact",
            Some(l.parent_id),
            json!({"student_id": l.student_id}),
        )
        .await;
    Ok((
        StatusCode::CREATED,
        Json(json!({"parent_id": l.parent_id, "student_id": l.student_id, "relation": l.relation})),
    ))
}
