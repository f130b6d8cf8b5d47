//! Users of the API and their tokens: admins create users at their node or below; a token is shown
//! once, when it is created, and only its hash is kept.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{ADMIN, ANY, forbidden};
use super::error::{ApiJson, ApiPath, ApiQuery, AppError};
use super::{Actor, AppState};
use crate::auth::{hash_password, new_token};
use crate::clock::now_ms;
use crate::domain::access::{NewUser, Principal, User, UserRole};
use crate::domain::validation::ValidationError;
use crate::store::{Store, StoreError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", post(create).get(list))
        .route("/users/{id}/tokens", post(token))
        .route("/users/{id}/tokens/{token_id}", delete(revoke))
        .route("/me", get(me))
}

#[derive(Deserialize)]
pub struct NewUserInput {
    /// Absent or null: an operator of the whole installation (only operators create those).
    pub org_id: Option<i64>,
    pub username: String,
    pub full_name: String,
    pub roles: Vec<UserRole>,
    /// For the web pages; at least 10 characters. API tokens need none.
    #[serde(default)]
    pub password: Option<String>,
}

/// Checks a new user's fields and hashes the password (shared by the API and `loa user create`).
pub fn validate_user(u: NewUserInput) -> Result<NewUser, ValidationError> {
    let mut errs = ValidationError::default();
    let username = u.username.trim().to_lowercase();
    if username.len() < 3
        || username.len() > 64
        || !username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c))
    {
        errs.push(
            "username",
            "tên đăng nhập dài 3-64 ký tự, chỉ gồm chữ không dấu, số và . _ - @",
        );
    }
    if u.full_name.trim().is_empty() {
        errs.push("full_name", "họ tên không được để trống");
    }
    if u.roles.is_empty() {
        errs.push(
            "roles",
            "cần ít nhất một vai trò (admin, author, approver, viewer)",
        );
    }
    let password_hash = match u.password.as_deref() {
        Some(p) if p.chars().count() < 10 => {
            errs.push("password", "mật khẩu cần ít nhất 10 ký tự");
            None
        }
        Some(p) => match hash_password(p) {
            Ok(h) => Some(h),
            Err(e) => {
                errs.push("password", e.to_string());
                None
            }
        },
        None => None,
    };
    let mut roles = u.roles;
    roles.sort();
    roles.dedup();
    errs.into_result(NewUser {
        org_id: u.org_id,
        username,
        full_name: u.full_name.trim().to_string(),
        roles,
        password_hash,
    })
}

/// Creates a user; a taken username is a conflict.
pub async fn create_user(store: &dyn Store, u: &NewUser) -> Result<User, AppError> {
    store.create_user(u, now_ms()).await.map_err(|e| match e {
        StoreError::Conflict(_) => {
            AppError::conflict(format!("tên đăng nhập {:?} đã có người dùng", u.username))
        }
        e => e.into(),
    })
}

/// Creates a token for a user; returns (token id, the token itself, to show once).
pub async fn create_token(
    store: &dyn Store,
    user_id: i64,
    name: &str,
) -> anyhow::Result<(i64, String)> {
    let (token, hash) = new_token();
    let id = store
        .create_api_token(user_id, name, &hash, now_ms())
        .await?;
    Ok((id, token))
}

async fn create(
    actor: Actor,
    State(s): State<AppState>,
    ApiJson(input): ApiJson<NewUserInput>,
) -> Result<(StatusCode, Json<User>), AppError> {
    actor.require(ADMIN)?;
    match input.org_id {
        Some(org) => {
            actor.target_org(&s, org, "org_id").await?;
        }
        None => actor.require_operator()?,
    }
    let u = validate_user(input)?;
    let user = create_user(s.store.as_ref(), &u).await?;
    actor
        .audit(
            &s,
            user.org_id,
            "user.create",
            "user",
            Some(user.id),
            json!({"roles": user.roles}),
        )
        .await;
    Ok((StatusCode::CREATED, Json(user)))
}

#[derive(Deserialize)]
struct ListQuery {
    org_id: Option<i64>,
}

async fn list(
    actor: Actor,
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<User>>, AppError> {
    actor.require(ADMIN)?;
    let path = match q.org_id {
        Some(id) => actor.visible_org(&s, id).await?.path,
        None => actor.0.org_path.clone(),
    };
    Ok(Json(s.store.list_users(&path).await?))
}

#[derive(Deserialize)]
struct TokenInput {
    name: String,
}

/// The user whose tokens (and, from the pages, password and sessions) are managed: the acting user
/// themself, or a user of an admin's subtree (404 for anyone else, as if they did not exist).
pub(crate) async fn token_owner(actor: &Actor, s: &AppState, id: i64) -> Result<User, AppError> {
    actor.require(ANY)?;
    let user = match s.store.get_user(id).await {
        Ok(u) => u,
        Err(StoreError::NotFound(_)) => return Err(AppError::not_found("user")),
        Err(e) => return Err(e.into()),
    };
    if user.id != actor.0.user_id {
        actor.require(ADMIN)?;
        let in_scope = match user.org_id {
            Some(org) => actor.visible_org(s, org).await.is_ok(),
            None => actor.0.is_operator(),
        };
        if !in_scope {
            return Err(AppError::not_found("user"));
        }
    }
    Ok(user)
}

/// A user creates tokens for themself; an admin for users of their subtree.
async fn token(
    actor: Actor,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(t): ApiJson<TokenInput>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let (token_id, name, token) = token_as(&actor, &s, id, &t.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": token_id, "user_id": id, "name": name, "token": token})),
    ))
}

/// A new API token for a user (themself, or a user of an admin's subtree), as the API and the
/// pages make it: (id, name, the token, shown once).
pub(crate) async fn token_as(
    actor: &Actor,
    s: &AppState,
    id: i64,
    name: &str,
) -> Result<(i64, String, String), AppError> {
    let user = token_owner(actor, s, id).await?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::field(
            "name",
            "cần đặt tên cho mã truy cập (tối đa 100 ký tự)",
        ));
    }
    if user.disabled {
        return Err(forbidden());
    }
    let (token_id, token) = create_token(s.store.as_ref(), id, name)
        .await
        .map_err(AppError::internal)?;
    actor
        .audit(
            s,
            user.org_id,
            "token.create",
            "user",
            Some(id),
            json!({"token_id": token_id}),
        )
        .await;
    Ok((token_id, name.to_string(), token))
}

/// Revokes a token at once: the next request with it gets 401.
async fn revoke(
    actor: Actor,
    State(s): State<AppState>,
    ApiPath((id, token_id)): ApiPath<(i64, i64)>,
) -> Result<Json<Value>, AppError> {
    revoke_as(&actor, &s, id, token_id).await?;
    Ok(Json(
        json!({"id": token_id, "user_id": id, "revoked": true}),
    ))
}

/// Revoking a user's token, as the API and the pages do it (the owner, or an admin above them).
pub(crate) async fn revoke_as(
    actor: &Actor,
    s: &AppState,
    id: i64,
    token_id: i64,
) -> Result<(), AppError> {
    let user = token_owner(actor, s, id).await?;
    if !s.store.revoke_api_token(id, token_id, now_ms()).await? {
        return Err(AppError::not_found("token"));
    }
    actor
        .audit(
            s,
            user.org_id,
            "token.revoke",
            "user",
            Some(id),
            json!({"token_id": token_id}),
        )
        .await;
    Ok(())
}

async fn me(actor: Actor) -> Json<Principal> {
    Json(actor.0)
}
