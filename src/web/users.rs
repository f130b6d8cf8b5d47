//! Users of an admin's subtree: their roles and open sessions; an admin sets a user's password
//! (their sessions end), logs all of a user's sessions out, and makes API tokens (shown once).
//! Whose user is whose is the API's rule (`api::users::token_owner`).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::login::{WebForm, weak_password};
use super::session::{CsrfOnly, PageError, Staff, see_other};
use super::{base, labels, view};
use crate::api::AppState;
use crate::api::auth::ADMIN;
use crate::api::error::AppError;
use crate::api::users::{token_as, token_owner};
use crate::auth::hash_password;
use crate::clock::now_ms;
use crate::domain::access::User;

fn roles_vi(u: &User) -> String {
    u.roles
        .iter()
        .map(|r| labels::user_role(*r))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn org_name(s: &AppState, id: Option<i64>) -> Result<String, PageError> {
    Ok(match id {
        Some(id) => s.store.get_org(id).await?.name,
        None => "Toàn hệ thống".into(),
    })
}

pub async fn list(State(s): State<AppState>, staff: Staff) -> Result<Html<String>, PageError> {
    staff.actor.require(ADMIN)?;
    let mut users = Vec::new();
    // Many users share a node: each node's name is read once.
    let mut names: std::collections::HashMap<Option<i64>, String> = Default::default();
    for u in s.store.list_users(&staff.actor.0.org_path).await? {
        if let std::collections::hash_map::Entry::Vacant(v) = names.entry(u.org_id) {
            v.insert(org_name(&s, u.org_id).await?);
        }
        users.push(minijinja::context! {
            id => u.id, username => u.username, full_name => u.full_name, roles => roles_vi(&u),
            org => names.get(&u.org_id), disabled => u.disabled,
        });
    }
    let ctx = base(&staff, "Người dùng");
    Ok(view::render(
        "users.html",
        minijinja::context! { users, ..ctx },
    )?)
}

#[derive(Deserialize)]
pub struct Flash {
    done: Option<String>,
}

async fn user_page(
    s: &AppState,
    staff: &Staff,
    id: i64,
    status: StatusCode,
    flash: Option<&str>,
    error: Option<&str>,
    token: Option<&str>,
) -> Result<Response, PageError> {
    let u = token_owner(&staff.actor, s, id).await?;
    let sessions = s.store.list_sessions(u.id, now_ms()).await?;
    let tokens = s.store.list_api_tokens(u.id).await?;
    let ctx = base(staff, &u.full_name);
    let html = view::render(
        "user.html",
        minijinja::context! {
            u => minijinja::Value::from_serialize(&u), roles => roles_vi(&u),
            org => org_name(s, u.org_id).await?, own => u.id == staff.actor.0.user_id,
            sessions => minijinja::Value::from_serialize(&sessions), flash, error, token,
            tokens => minijinja::Value::from_serialize(&tokens),
            ..ctx
        },
    )?;
    Ok((status, html).into_response())
}

pub async fn one(
    State(s): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
    Query(q): Query<Flash>,
) -> Result<Response, PageError> {
    let flash = match q.done.as_deref() {
        Some("password") => {
            Some("Đã đặt mật khẩu mới; các phiên đăng nhập của người dùng đã kết thúc.")
        }
        Some("sessions") => Some("Đã đăng xuất mọi phiên của người dùng."),
        Some("revoked") => Some("Đã thu hồi mã truy cập."),
        _ => None,
    };
    user_page(&s, &staff, id, StatusCode::OK, flash, None, None).await
}

#[derive(Deserialize)]
pub struct SetPassword {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    new: String,
    confirm: String,
}

/// An admin sets the password of a user of their subtree (not their own: that asks for the current
/// one, on /account/password); every session of that user ends.
pub async fn set_password(
    State(s): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
    WebForm(f): WebForm<SetPassword>,
) -> Result<Response, PageError> {
    staff.check_csrf(&f.csrf)?;
    let u = token_owner(&staff.actor, &s, id).await?;
    if u.id == staff.actor.0.user_id {
        return Ok(see_other("/account/password"));
    }
    staff.actor.require(ADMIN)?;
    if let Some(why) = weak_password(&f.new, &f.confirm) {
        return user_page(
            &s,
            &staff,
            id,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            Some(why),
            None,
        )
        .await;
    }
    let hash = hash_password(&f.new).map_err(AppError::internal)?;
    s.store.set_password(u.id, &hash).await?;
    let ended = s.store.end_user_sessions(u.id, None, now_ms()).await?;
    staff
        .actor
        .audit(
            &s,
            u.org_id,
            "user.password_set",
            "user",
            Some(u.id),
            json!({"sessions_ended": ended}),
        )
        .await;
    Ok(see_other(&format!("/users/{id}?done=password")))
}

pub async fn end_sessions(
    State(s): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
    WebForm(f): WebForm<CsrfOnly>,
) -> Result<Response, PageError> {
    staff.check_csrf(&f.csrf)?;
    let u = token_owner(&staff.actor, &s, id).await?;
    // One's own: every session but this one.
    let keep = (u.id == staff.actor.0.user_id).then_some(staff.session_hash.as_str());
    let ended = s.store.end_user_sessions(u.id, keep, now_ms()).await?;
    staff
        .actor
        .audit(
            &s,
            u.org_id,
            "user.sessions_end",
            "user",
            Some(u.id),
            json!({"sessions_ended": ended}),
        )
        .await;
    Ok(see_other(&format!("/users/{id}?done=sessions")))
}

#[derive(Deserialize)]
pub struct NewToken {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

pub async fn create_token(
    State(s): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
    WebForm(f): WebForm<NewToken>,
) -> Result<Response, PageError> {
    staff.check_csrf(&f.csrf)?;
    match token_as(&staff.actor, &s, id, &f.name).await {
        // Shown on this answer only: the page is not cached, the token is not in any URL.
        Ok((_, _, token)) => {
            let mut r = user_page(
                &s,
                &staff,
                id,
                StatusCode::CREATED,
                None,
                None,
                Some(&token),
            )
            .await?;
            r.headers_mut().insert(
                axum::http::header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("no-store"),
            );
            Ok(r)
        }
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => {
            user_page(&s, &staff, id, e.status, None, Some(&e.message), None).await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn revoke_token(
    State(s): State<AppState>,
    staff: Staff,
    Path((id, token_id)): Path<(i64, i64)>,
    WebForm(f): WebForm<CsrfOnly>,
) -> Result<Response, PageError> {
    staff.check_csrf(&f.csrf)?;
    crate::api::users::revoke_as(&staff.actor, &s, id, token_id).await?;
    Ok(see_other(&format!("/users/{id}?done=revoked")))
}
