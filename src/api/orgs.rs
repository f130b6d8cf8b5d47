//! Organisations: the Sở -> Phòng -> school -> class tree, and each node's approval policy.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::auth::{ADMIN, ANY, forbidden};
use super::error::{ApiJson, ApiPath, ApiQuery, AppError};
use super::{Actor, AppState};
use crate::clock::now_ms;
use crate::domain::access::may_set_policy;
use crate::domain::org::{NewOrg, Org, OrgKind};
use crate::domain::schedule::{Calendar, QuietHours};
use crate::domain::validation::ValidationError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orgs", post(create).get(list))
        .route("/orgs/{id}", get(one))
        .route("/orgs/{id}/policy", post(policy))
        .route("/orgs/{id}/calendar", get(calendar).put(set_calendar))
        .route("/orgs/{id}/quiet-hours", put(set_quiet_hours))
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
            crate::store::StoreError::Conflict(_) if o.kind == OrgKind::Class => {
                AppError::conflict(format!("trường đã có lớp mã {:?}", o.code.trim()))
            }
            crate::store::StoreError::Conflict(_) => {
                AppError::conflict(format!("đã có đơn vị mã {:?}", o.code.trim()))
            }
            crate::store::StoreError::InvalidReference(_) => {
                AppError::field("parent_id", "đơn vị cấp trên không tồn tại")
            }
            crate::store::StoreError::Invalid(_) => AppError::field(
                "kind",
                "loại đơn vị này không đặt được dưới đơn vị cấp trên đã chọn \
                 (Sở → Phòng → trường → lớp)",
            ),
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

/// Whether a node's approvers may approve campaigns they created, edited or submitted. Set only from
/// above the school for a school and its classes (from above the node for a Phòng or Sở), so nobody
/// switches four eyes off for content they can write themselves.
async fn policy(
    actor: Actor,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(p): ApiJson<Policy>,
) -> Result<Json<Org>, AppError> {
    actor.require(ADMIN)?;
    let org = actor.visible_org(&s, id).await?;
    if !may_set_policy(&actor.0, org.kind, &org.path) {
        return Err(AppError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Chính sách tự phê duyệt chỉ do quản trị viên cấp trên đặt: cho trường và các lớp của \
             trường, từ Phòng GD&ĐT trở lên",
        ));
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

/// The calendar that applies at a node: its own, or the nearest ancestor's (`inherited_from`).
async fn calendar(
    actor: Actor,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<serde_json::Value>, AppError> {
    actor.require(ANY)?;
    actor.visible_org(&s, id).await?;
    let (from, cal) = s.store.effective_calendar(id).await?;
    Ok(Json(json!({
        "org_id": id,
        "inherited_from": from.filter(|f| *f != id),
        "own": from == Some(id),
        "calendar": cal,
    })))
}

#[derive(Deserialize)]
struct CalendarInput {
    /// `null` drops the node's own calendar (its ancestors' applies again).
    calendar: Option<Calendar>,
}

/// A node's own term dates and holidays (admins of the node or above), overriding its ancestors'.
async fn set_calendar(
    actor: Actor,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(c): ApiJson<CalendarInput>,
) -> Result<Json<serde_json::Value>, AppError> {
    actor.require(ADMIN)?;
    actor.visible_org(&s, id).await?;
    if let Some(cal) = &c.calendar {
        cal.validate().map_err(|e| AppError::field("calendar", e))?;
    }
    s.store.set_calendar(id, c.calendar.as_ref()).await?;
    actor
        .audit(
            &s,
            Some(id),
            "org.calendar",
            "org",
            Some(id),
            json!({"own": c.calendar.is_some()}),
        )
        .await;
    calendar(actor, State(s), ApiPath(id)).await
}

#[derive(Deserialize)]
struct QuietInput {
    /// "21:00-07:00"; "" = none at this node; `null` = inherit.
    quiet_hours: Option<String>,
}

async fn set_quiet_hours(
    actor: Actor,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(q): ApiJson<QuietInput>,
) -> Result<Json<serde_json::Value>, AppError> {
    actor.require(ADMIN)?;
    actor.visible_org(&s, id).await?;
    let value = match q.quiet_hours.as_deref().map(str::trim) {
        None => None,
        Some("") => Some(String::new()),
        Some(v) => Some(
            v.parse::<QuietHours>()
                .map_err(|e| AppError::field("quiet_hours", e))?
                .to_string(),
        ),
    };
    s.store.set_quiet_hours(id, value.as_deref()).await?;
    actor
        .audit(
            &s,
            Some(id),
            "org.quiet_hours",
            "org",
            Some(id),
            json!({"quiet_hours": value}),
        )
        .await;
    Ok(Json(json!({"org_id": id, "quiet_hours": value})))
}
