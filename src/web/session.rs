//! Who a page request comes from: the session cookie names a stored session (`Staff`), each form
//! carries the session's CSRF token, and failures become Vietnamese pages (`PageError`), never JSON.

use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, LOCATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::api::error::AppError;
use crate::api::{Actor, AppState};
use crate::auth::hash_token;
use crate::clock::now_ms;
use crate::domain::Millis;
use crate::domain::session::Throttle;

/// The cookie that holds a session's random value (its SHA-256 is what the store keeps).
pub const COOKIE_NAME: &str = "loa_session";

/// How the pages' logins behave, from `[web]` and `server.public_url`.
#[derive(Clone, Debug)]
pub struct WebSettings {
    pub idle_ms: Millis,
    pub max_ms: Millis,
    /// Cookies carry `Secure` when staff reach Loa over https.
    pub secure_cookies: bool,
    pub trust_forwarded_for: bool,
    pub throttle: Throttle,
}

impl WebSettings {
    pub fn new(cfg: &crate::config::WebConfig, public_url: &str) -> Self {
        WebSettings {
            idle_ms: i64::from(cfg.session_idle_minutes) * 60_000,
            max_ms: i64::from(cfg.session_max_hours) * 3_600_000,
            secure_cookies: public_url.starts_with("https://"),
            trust_forwarded_for: cfg.trust_forwarded_for,
            throttle: Throttle::default(),
        }
    }

    /// The `Set-Cookie` value that opens a session (`value`) or ends it (`None`).
    pub fn cookie(&self, value: Option<&str>) -> HeaderValue {
        let secure = if self.secure_cookies { "; Secure" } else { "" };
        let s = match value {
            Some(v) => format!(
                "{COOKIE_NAME}={v}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
                self.max_ms / 1000
            ),
            None => format!("{COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"),
        };
        // Only ASCII goes in (hex and fixed text).
        HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

/// A logged-in member of staff: the same `Actor` the API checks roles and scope with.
#[derive(Clone, Debug)]
pub struct Staff {
    pub actor: Actor,
    pub csrf: String,
    /// The stored hash of this session's cookie (to end it, or keep it when others end).
    pub session_hash: String,
}

/// The session cookie's value, if the request has one. By hand: one cookie by name is all the
/// pages read, not worth a cookie crate.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE_NAME)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

impl FromRequestParts<AppState> for Staff {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, PageError> {
        let next = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let Some(value) = session_cookie(&parts.headers) else {
            return Err(PageError::Login(next));
        };
        let hash = hash_token(&value);
        let w = &s.web;
        match s
            .store
            .session(&hash, now_ms(), w.idle_ms, 60_000)
            .await
            .map_err(AppError::from)?
        {
            Some(session) => Ok(Staff {
                actor: Actor(session.principal),
                csrf: session.csrf,
                session_hash: hash,
            }),
            None => Err(PageError::Login(next)),
        }
    }
}

impl Staff {
    /// Refuses a form whose CSRF token is not this session's. Both sides are hashed before the
    /// comparison so its time says nothing about the token.
    pub fn check_csrf(&self, sent: &str) -> Result<(), PageError> {
        if Sha256::digest(sent.as_bytes()) == Sha256::digest(self.csrf.as_bytes()) {
            Ok(())
        } else {
            Err(PageError::App(AppError::new(
                StatusCode::FORBIDDEN,
                "csrf",
                "Biểu mẫu không hợp lệ hoặc đã cũ (thiếu mã chống giả mạo). Vui lòng tải lại trang và thử lại.",
            )))
        }
    }
}

/// A form that carries nothing but the session's CSRF token (log out, resume, revoke, ...).
#[derive(serde::Deserialize)]
pub struct CsrfOnly {
    #[serde(rename = "_csrf", default)]
    pub csrf: String,
}

/// What a page answers when it cannot show what was asked.
#[derive(Debug)]
pub enum PageError {
    /// Not logged in (or the session ended): to the login page, then back to this path.
    Login(String),
    /// Any refusal or failure the API would give, as a page with the same status and message.
    App(AppError),
}

impl From<AppError> for PageError {
    fn from(e: AppError) -> Self {
        PageError::App(e)
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(e: crate::store::StoreError) -> Self {
        PageError::App(e.into())
    }
}

/// Where a login may send the browser back to: a path of ours, never another site.
pub fn safe_next(next: &str) -> &str {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.starts_with("/login")
        && next.len() <= 1000
        && !next.chars().any(|c| c.is_control());
    if ok { next } else { "/" }
}

pub fn see_other(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(LOCATION, v);
    }
    r
}

pub fn with_cookie(mut r: Response, cookie: HeaderValue) -> Response {
    r.headers_mut().append(SET_COOKIE, cookie);
    r
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::Login(next) => {
                let next = safe_next(&next);
                let q = serde_urlencoded::to_string([("next", next)]).unwrap_or_default();
                see_other(&format!("/login?{q}"))
            }
            PageError::App(e) => {
                let title = match e.status {
                    StatusCode::FORBIDDEN => "Không có quyền truy cập",
                    StatusCode::NOT_FOUND => "Không tìm thấy",
                    StatusCode::TOO_MANY_REQUESTS => "Tạm thời bị chặn",
                    StatusCode::SERVICE_UNAVAILABLE => "Hệ thống tạm thời gián đoạn",
                    s if s.is_client_error() => "Yêu cầu chưa hợp lệ",
                    _ => "Lỗi hệ thống",
                };
                let mut details = e.field_messages();
                // Other facts the error names; the store's English `reason` stays out of the page.
                if let Some(map) = e.details.as_object() {
                    for (k, v) in map.iter().filter(|(k, _)| *k != "reason") {
                        details.push(format!("{k}: {}", v.as_str().unwrap_or(&v.to_string())));
                    }
                }
                let body = super::view::render(
                    "error.html",
                    minijinja::context! {
                        title, message => e.message, details, status => e.status.as_u16(),
                    },
                )
                .unwrap_or_else(|_| axum::response::Html(e.message.clone()));
                let mut r = (e.status, body).into_response();
                if e.status == StatusCode::SERVICE_UNAVAILABLE {
                    r.headers_mut()
                        .insert("retry-after", HeaderValue::from_static("10"));
                }
                r
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next("/campaigns/4"), "/campaigns/4");
        assert_eq!(safe_next("//evil.example/x"), "/");
        assert_eq!(safe_next("/\\evil.example"), "/");
        assert_eq!(safe_next("https://evil.example"), "/");
        assert_eq!(safe_next("/login?next=/x"), "/");
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_static("a=1; loa_session=abc ; b=2"),
        );
        assert_eq!(session_cookie(&h).as_deref(), Some("abc"));
        h.insert(COOKIE, HeaderValue::from_static("loa_session="));
        assert_eq!(session_cookie(&h), None);
    }
}
