//! Contacts (parents, students, staff), their opt-outs, and guardian links between parents and children.
//! Personal data: only admins of the node or above read one in full or change it; the list is open to
//! every role of the subtree, with addresses masked for all but admins.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{ADMIN, ANY};
use super::error::{ApiJson, ApiPath, ApiQuery, AppError};
use super::{Actor, AppState};
use crate::clock::now_ms;
use crate::domain::Channel;
use crate::domain::access::UserRole;
use crate::domain::contact::{Contact, NewContactInput, Role, fold_name};
use crate::domain::org::OrgKind;
use crate::store::{ContactFilter, ContactPage, StoreError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/contacts", post(create).get(list))
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
    Ok((
        StatusCode::CREATED,
        Json(create_as(&actor, &s, input).await?),
    ))
}

/// Adding one person, as the API and the pages do it: admins of the node or above; audited.
pub(crate) async fn create_as(
    actor: &Actor,
    s: &AppState,
    input: NewContactInput,
) -> Result<Contact, AppError> {
    actor.require(ADMIN)?;
    let c = input.validate()?;
    actor.target_org(s, c.org_id, "org_id").await?;
    let contact = s
        .store
        .create_contact(&c, now_ms())
        .await
        .map_err(|e| match e {
            StoreError::InvalidReference(_) => AppError::field("org_id", "đơn vị không tồn tại"),
            StoreError::Conflict(_) => {
                AppError::conflict("trường đã có học sinh với mã học sinh này")
            }
            StoreError::Invalid(m) => AppError::field("org_id", m),
            e => e.into(),
        })?;
    actor
        .audit(
            s,
            Some(contact.org_id),
            "contact.create",
            "contact",
            Some(contact.id),
            json!({"role": contact.role}),
        )
        .await;
    Ok(contact)
}

/// Contacts per page: the default and the most one request may ask for.
const PAGE: i64 = 100;
const PAGE_MAX: i64 = 500;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// A node of the user's subtree (default: the user's own node); its subtree is listed.
    pub org_id: Option<i64>,
    /// A class: its students and the parents of its students.
    pub class_id: Option<i64>,
    pub role: Option<String>,
    /// Only people with an address for this channel (`email`, `sms`, `zalo`, `zalo_zns`, `messenger`).
    pub has: Option<String>,
    /// Part of the name; case, accents and spacing are ignored.
    pub q: Option<String>,
    /// The `next_after` of the previous page.
    pub after: Option<i64>,
    pub limit: Option<i64>,
}

/// The contacts of the user's subtree, filtered and paged by id. Reading the first page is recorded
/// in the audit log (an export of personal data, like a campaign's delivery list).
async fn list(
    actor: Actor,
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Value>, AppError> {
    let page = list_as(&actor, &s, &q).await?;
    Ok(Json(
        json!({"contacts": page.contacts, "next_after": page.next_after}),
    ))
}

/// A page of the contacts a user may see, masked unless they administer the node; the first page
/// of a listing is audited. The API and the pages list people through here.
pub(crate) async fn list_as(
    actor: &Actor,
    s: &AppState,
    q: &ListQuery,
) -> Result<ContactPage, AppError> {
    actor.require(ANY)?;
    let org = match q.org_id {
        Some(id) => Some(actor.visible_org(s, id).await?),
        None => None,
    };
    let org_path = org
        .as_ref()
        .map(|o| o.path.clone())
        .unwrap_or_else(|| actor.0.org_path.clone());
    let class_path = match q.class_id {
        None => None,
        Some(id) => match actor.visible_org(s, id).await {
            Ok(c) if c.kind == OrgKind::Class && c.path.starts_with(&org_path) => Some(c.path),
            _ => {
                return Err(AppError::field(
                    "class_id",
                    "không có lớp này trong đơn vị đang xem",
                ));
            }
        },
    };
    let role = match q.role.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(v) => Some(Role::parse(v).ok_or_else(|| {
            AppError::field(
                "role",
                format!("không có vai trò {v:?} (parent, student, staff)"),
            )
        })?),
    };
    let has = match q.has.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(v) => Some(
            Channel::parse(v)
                .ok_or_else(|| AppError::field("has", format!("không có kênh {v:?}")))?,
        ),
    };
    let search = q.q.as_deref().map(fold_name).filter(|s| !s.is_empty());
    if search.as_ref().is_some_and(|s| s.chars().count() > 100) {
        return Err(AppError::field("q", "tên tìm kiếm dài quá 100 ký tự"));
    }
    let limit = match q.limit {
        None => PAGE,
        Some(n) if (1..=PAGE_MAX).contains(&n) => n,
        Some(_) => {
            return Err(AppError::field(
                "limit",
                format!("limit phải từ 1 đến {PAGE_MAX}"),
            ));
        }
    };
    let page = s
        .store
        .list_contacts(&ContactFilter {
            org_path,
            class_path,
            role,
            has,
            search,
            after_id: q.after,
            limit,
        })
        .await?;
    if q.after.is_none() {
        actor
            .audit(
                s,
                org.as_ref().map(|o| o.id).or(actor.0.org_id),
                "contact.list",
                "contact",
                None,
                json!({"rows": page.contacts.len()}),
            )
            .await;
    }
    let full = actor.0.has(UserRole::Admin);
    let contacts: Vec<Contact> = page
        .contacts
        .into_iter()
        .map(|c| if full { c } else { c.masked() })
        .collect();
    Ok(ContactPage {
        contacts,
        next_after: page.next_after,
    })
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
    erase_as(&actor, &s, id).await?;
    Ok(Json(json!({"id": id, "erased": true})))
}

/// Erasing a person (every address, name and message text of theirs), as the API and the pages
/// do it: admins of their node or above; audited.
pub(crate) async fn erase_as(actor: &Actor, s: &AppState, id: i64) -> Result<(), AppError> {
    actor.require(ADMIN)?;
    let c = actor.visible_contact(s, id).await?;
    if !s.store.erase_contact(id, now_ms()).await? {
        return Err(AppError::not_found("contact"));
    }
    tracing::info!(contact = id, "contact erased");
    actor
        .audit(
            s,
            Some(c.org_id),
            "contact.erase",
            "contact",
            Some(id),
            json!({}),
        )
        .await;
    Ok(())
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
