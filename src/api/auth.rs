//! Authentication and authorization of API requests: the bearer token names a user (`Actor`), each
//! handler says which roles may act, and the scope helpers load an object only if it lies in the
//! user's subtree. Out of scope is 404 for objects named in the path (their existence is not
//! revealed) and 403 for nodes named in the body.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde_json::Value;

use super::AppState;
use super::error::AppError;
use crate::auth::hash_token;
use crate::clock::now_ms;
use crate::domain::access::{AuditEntry, Principal, UserRole, library_reaches};
use crate::domain::campaign::{Campaign, Template};
use crate::domain::contact::Contact;
use crate::domain::org::Org;
use crate::store::StoreError;

pub const ANY: &[UserRole] = &UserRole::ALL;
pub const ADMIN: &[UserRole] = &[UserRole::Admin];
pub const AUTHOR: &[UserRole] = &[UserRole::Author];
pub const APPROVER: &[UserRole] = &[UserRole::Approver];
/// Starting an approved campaign: whoever wrote it or approved it.
pub const START: &[UserRole] = &[UserRole::Author, UserRole::Approver];
/// Stopping a campaign or acting on a paused channel: also the node's admin.
pub const OPERATE: &[UserRole] = &[UserRole::Author, UserRole::Approver, UserRole::Admin];

/// The user a request acts as, from `Authorization: Bearer <token>`.
#[derive(Clone, Debug)]
pub struct Actor(pub Principal);

fn unauthenticated(message: &str) -> AppError {
    AppError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
}

pub fn forbidden() -> AppError {
    AppError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        "Tài khoản không có quyền thực hiện thao tác này",
    )
}

fn out_of_scope() -> AppError {
    AppError::new(
        StatusCode::FORBIDDEN,
        "out_of_scope",
        "Đơn vị này nằm ngoài phạm vi quản lý của tài khoản",
    )
}

impl FromRequestParts<AppState> for Actor {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, AppError> {
        let Some(value) = parts.headers.get(AUTHORIZATION) else {
            return Err(unauthenticated(
                "Cần mã truy cập API (tiêu đề Authorization: Bearer <token>)",
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthenticated("Tiêu đề Authorization phải có dạng: Bearer <token>"))?;
        match s.store.principal_by_token(&hash_token(token)).await? {
            Some(p) => Ok(Actor(p)),
            None => Err(unauthenticated(
                "Mã truy cập API không đúng hoặc đã bị thu hồi",
            )),
        }
    }
}

impl Actor {
    /// 403 unless the user has one of `roles`.
    pub fn require(&self, roles: &[UserRole]) -> Result<(), AppError> {
        if self.0.has_any(roles) {
            Ok(())
        } else {
            Err(forbidden())
        }
    }

    /// 403 unless the user is an operator of the whole installation.
    pub fn require_operator(&self) -> Result<(), AppError> {
        if self.0.is_operator() && self.0.has(UserRole::Admin) {
            Ok(())
        } else {
            Err(forbidden())
        }
    }

    /// A node named in the path: 404 when it does not exist or lies outside the user's subtree.
    pub async fn visible_org(&self, s: &AppState, id: i64) -> Result<Org, AppError> {
        match s.store.get_org(id).await {
            Ok(o) if self.0.covers(&o.path) => Ok(o),
            Ok(_) | Err(StoreError::NotFound(_)) => Err(AppError::not_found("org")),
            Err(e) => Err(e.into()),
        }
    }

    /// A node named in a request body (where to create something): 403 when it lies outside the
    /// user's subtree, and for scoped users also when it does not exist, so the answer says nothing
    /// about nodes they cannot see.
    pub async fn target_org(&self, s: &AppState, id: i64, field: &str) -> Result<Org, AppError> {
        match s.store.get_org(id).await {
            Ok(o) if self.0.covers(&o.path) => Ok(o),
            Ok(_) => Err(out_of_scope()),
            Err(StoreError::NotFound(_)) if self.0.is_operator() => {
                Err(AppError::field(field, "đơn vị không tồn tại"))
            }
            Err(StoreError::NotFound(_)) => Err(out_of_scope()),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn visible_campaign(
        &self,
        s: &AppState,
        id: i64,
    ) -> Result<(Campaign, Org), AppError> {
        let c = match s.store.get_campaign(id).await {
            Ok(c) => c,
            Err(StoreError::NotFound(_)) => return Err(AppError::not_found("campaign")),
            Err(e) => return Err(e.into()),
        };
        let org = self
            .visible_org(s, c.org_id)
            .await
            .map_err(|_| AppError::not_found("campaign"))?;
        Ok((c, org))
    }

    pub async fn visible_contact(&self, s: &AppState, id: i64) -> Result<Contact, AppError> {
        let c = match s.store.get_contact(id).await {
            Ok(c) => c,
            Err(StoreError::NotFound(_)) => return Err(AppError::not_found("contact")),
            Err(e) => return Err(e.into()),
        };
        self.visible_org(s, c.org_id)
            .await
            .map_err(|_| AppError::not_found("contact"))?;
        Ok(c)
    }

    /// A template the user may read: one of its subtree, or library content published at or above
    /// its node.
    pub async fn visible_template(&self, s: &AppState, id: i64) -> Result<Template, AppError> {
        let t = match s.store.get_template(id).await {
            Ok(t) => t,
            Err(StoreError::NotFound(_)) => return Err(AppError::not_found("template")),
            Err(e) => return Err(e.into()),
        };
        let org = s.store.get_org(t.org_id).await?;
        let shared = t.published.is_some() && library_reaches(&org.path, &self.0.org_path);
        if self.0.covers(&org.path) || shared {
            Ok(t)
        } else {
            Err(AppError::not_found("template"))
        }
    }

    /// Appends to the audit log; a failure is logged, never shown to the user (the action is done).
    pub async fn audit(
        &self,
        s: &AppState,
        org_id: Option<i64>,
        action: &'static str,
        object: &'static str,
        object_id: Option<i64>,
        detail: Value,
    ) {
        let e = AuditEntry::by(&self.0, org_id, action, object, object_id, detail);
        if let Err(err) = s.store.audit(&e, now_ms()).await {
            tracing::error!(error = %err, action, "audit entry not written");
        }
    }
}
