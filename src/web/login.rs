//! Logging in and out, and changing one's password. Failed logins are counted per account and per
//! address in the store (every instance sees them) and refused for a while past a limit.

use std::sync::OnceLock;

use axum::extract::{FromRequest, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::session::{CsrfOnly, PageError, Staff, safe_next, see_other, with_cookie};
use super::{ClientAddr, base, view};
use crate::api::error::AppError;
use crate::api::{Actor, AppState};
use crate::auth::{hash_password, new_token, verify_password};
use crate::clock::now_ms;
use crate::domain::session::{Failures, NewSession, address_key, user_key};

/// A form body; a malformed one is a Vietnamese page, not axum's plain-text rejection.
pub struct WebForm<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for WebForm<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, PageError> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(v)) => Ok(WebForm(v)),
            Err(e) => Err(PageError::App(
                AppError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "Biểu mẫu gửi lên không hợp lệ",
                )
                .reason(e.body_text()),
            )),
        }
    }
}

const MAX_USERNAME: usize = 200;
/// Argon2 over a huge input is work an attacker chooses: longer passwords are refused unread.
const MAX_PASSWORD: usize = 1024;
const MIN_NEW_PASSWORD: usize = 10;

#[derive(Deserialize)]
pub struct Next {
    next: Option<String>,
    bye: Option<String>,
}

fn login_page(
    status: StatusCode,
    next: &str,
    username: &str,
    error: Option<&str>,
    info: Option<&str>,
) -> Response {
    match view::render(
        "login.html",
        minijinja::context! { title => "Đăng nhập", next, username, error, info },
    ) {
        Ok(html) => (status, html).into_response(),
        Err(e) => PageError::App(e).into_response(),
    }
}

pub async fn form(Query(q): Query<Next>) -> Response {
    let info = q.bye.is_some().then_some("Bạn đã đăng xuất.");
    login_page(
        StatusCode::OK,
        safe_next(q.next.as_deref().unwrap_or("/")),
        "",
        None,
        info,
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    next: String,
}

/// A hash to verify against when the user does not exist, so that the answer takes as long as
/// for a wrong password and does not tell which usernames exist.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password, never valid").unwrap_or_default())
}

async fn verify(password: String, hash: Option<String>) -> bool {
    let known = hash.is_some();
    let hash = hash.unwrap_or_else(|| decoy_hash().to_string());
    // argon2 takes tens of milliseconds of CPU: off the async workers.
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    ok && known
}

/// Until when these failures refuse a login, if they do now.
fn refused_until(s: &AppState, failures: &[(String, Failures)], now: i64) -> Option<i64> {
    let t = s.web.throttle;
    failures
        .iter()
        .filter_map(|(key, f)| {
            let limit = if key.starts_with("user:") {
                t.per_user
            } else {
                t.per_address
            };
            t.refused_until(Some(*f), limit, now)
        })
        .max()
}

fn throttled_message(until: i64) -> String {
    format!(
        "Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau {}.",
        view::vn_datetime(Some(until))
    )
}

/// The login form has no session, hence no CSRF token: a login posted from another site (to log a
/// victim into the attacker's account) is refused by its `Origin`, which browsers send with every
/// cross-site POST.
fn foreign_origin(headers: &axum::http::HeaderMap) -> bool {
    let (Some(origin), Some(host)) = (
        headers.get("origin").and_then(|v| v.to_str().ok()),
        headers.get("host").and_then(|v| v.to_str().ok()),
    ) else {
        return false;
    };
    let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or(origin);
    origin != "null" && origin_host != host
}

pub async fn submit(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: axum::http::HeaderMap,
    WebForm(f): WebForm<LoginForm>,
) -> Result<Response, PageError> {
    if foreign_origin(&headers) {
        return Err(PageError::App(AppError::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "Biểu mẫu đăng nhập phải được gửi từ chính trang của Loa.",
        )));
    }
    let next = safe_next(&f.next).to_string();
    let username = f.username.trim().to_string();
    if username.is_empty()
        || username.len() > MAX_USERNAME
        || f.password.is_empty()
        || f.password.len() > MAX_PASSWORD
    {
        return Ok(login_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            &next,
            "",
            Some("Cần nhập tên đăng nhập và mật khẩu."),
            None,
        ));
    }
    let now = now_ms();
    let keys = vec![user_key(&username), address_key(&addr)];
    let failures = s.store.login_failures(&keys).await?;
    if let Some(until) = refused_until(&s, &failures, now) {
        tracing::warn!("login refused: too many failures");
        return Ok(login_page(
            StatusCode::TOO_MANY_REQUESTS,
            &next,
            &username,
            Some(&throttled_message(until)),
            None,
        ));
    }
    let hash = s.store.password_hash(&username).await?;
    if !verify(f.password, hash).await {
        s.store
            .note_login_failure(&keys, now, s.web.throttle.window_ms)
            .await?;
        tracing::info!("login failed");
        return Ok(login_page(
            StatusCode::UNAUTHORIZED,
            &next,
            &username,
            Some("Tên đăng nhập hoặc mật khẩu không đúng."),
            None,
        ));
    }
    let user = s.store.user_by_name(&username).await?;
    let (value, id_hash) = new_token();
    let (csrf, _) = new_token();
    s.store
        .create_session(&NewSession {
            id_hash: id_hash.clone(),
            user_id: user.id,
            csrf,
            now,
            expires_at: now + s.web.max_ms,
        })
        .await?;
    s.store.clear_login_failures(&keys[0]).await?;
    if let Some(ws) = s
        .store
        .session(&id_hash, now, s.web.idle_ms, i64::MAX)
        .await?
    {
        let actor = Actor(ws.principal);
        actor
            .audit(
                &s,
                actor.0.org_id,
                "user.login",
                "user",
                Some(user.id),
                json!({}),
            )
            .await;
    }
    Ok(with_cookie(see_other(&next), s.web.cookie(Some(&value))))
}

pub async fn logout(
    State(s): State<AppState>,
    staff: Staff,
    WebForm(f): WebForm<CsrfOnly>,
) -> Result<Response, PageError> {
    staff.check_csrf(&f.csrf)?;
    s.store.end_session(&staff.session_hash, now_ms()).await?;
    Ok(with_cookie(see_other("/login?bye=1"), s.web.cookie(None)))
}

fn password_page(
    staff: &Staff,
    status: StatusCode,
    error: Option<&str>,
    info: Option<&str>,
) -> Result<Response, PageError> {
    let mut ctx = base(staff, "Đổi mật khẩu");
    ctx = minijinja::context! { heading => "Đổi mật khẩu", action => "/account/password", own => true, error, info, ..ctx };
    Ok((status, view::render("password.html", ctx)?).into_response())
}

pub async fn password_form(staff: Staff) -> Result<Response, PageError> {
    password_page(&staff, StatusCode::OK, None, None)
}

#[derive(Deserialize)]
pub struct NewPassword {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    current: String,
    new: String,
    confirm: String,
}

/// What is wrong with a new password, if anything.
pub(crate) fn weak_password(new: &str, confirm: &str) -> Option<&'static str> {
    if new != confirm {
        Some("Hai lần nhập mật khẩu mới không giống nhau.")
    } else if new.chars().count() < MIN_NEW_PASSWORD {
        Some("Mật khẩu mới cần ít nhất 10 ký tự.")
    } else if new.len() > MAX_PASSWORD {
        Some("Mật khẩu mới dài quá.")
    } else {
        None
    }
}

pub async fn change_password(
    State(s): State<AppState>,
    staff: Staff,
    WebForm(f): WebForm<NewPassword>,
) -> Result<Response, PageError> {
    staff.check_csrf(&f.csrf)?;
    let p = &staff.actor.0;
    let now = now_ms();
    let key = vec![user_key(&p.username)];
    if let Some(until) = refused_until(&s, &s.store.login_failures(&key).await?, now) {
        return password_page(
            &staff,
            StatusCode::TOO_MANY_REQUESTS,
            Some(&throttled_message(until)),
            None,
        );
    }
    if f.current.len() > MAX_PASSWORD
        || !verify(f.current, s.store.password_hash(&p.username).await?).await
    {
        s.store
            .note_login_failure(&key, now, s.web.throttle.window_ms)
            .await?;
        return password_page(
            &staff,
            StatusCode::UNAUTHORIZED,
            Some("Mật khẩu hiện tại không đúng."),
            None,
        );
    }
    if let Some(why) = weak_password(&f.new, &f.confirm) {
        return password_page(&staff, StatusCode::UNPROCESSABLE_ENTITY, Some(why), None);
    }
    let hash = hash_password(&f.new).map_err(AppError::internal)?;
    s.store.set_password(p.user_id, &hash).await?;
    let ended = s
        .store
        .end_user_sessions(p.user_id, Some(&staff.session_hash), now)
        .await?;
    staff
        .actor
        .audit(
            &s,
            p.org_id,
            "user.password_change",
            "user",
            Some(p.user_id),
            json!({"other_sessions_ended": ended}),
        )
        .await;
    password_page(
        &staff,
        StatusCode::OK,
        None,
        Some("Đã đổi mật khẩu. Các phiên đăng nhập khác đã được đăng xuất."),
    )
}
