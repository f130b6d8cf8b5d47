//! Server-rendered pages on the same server as the API: the parents' unsubscribe page and the staff
//! pages (Vietnamese). Staff pages act through the API's own service functions and access checks
//! (`api::Actor`), so a page can do nothing the API would refuse.

mod assets;
mod audit;
mod campaign;
mod compose;
mod failures;
mod home;
mod import;
mod labels;
mod library;
mod login;
mod people;
pub mod session;
pub mod unsubscribe;
mod users;
mod view;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::routing::{get, post};
use minijinja::Value;

use crate::api::AppState;
use session::Staff;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/u/{token}",
            get(unsubscribe::page).post(unsubscribe::confirm),
        )
        .route("/static/{file}", get(assets::serve))
        .merge(staff_pages().layer(axum::middleware::map_response(page_headers)))
}

/// Staff pages show personal data and act on it: never cached, never framed by another site, and
/// scripts only from Loa itself.
async fn page_headers(mut r: axum::response::Response) -> axum::response::Response {
    use axum::http::HeaderValue;
    let h = r.headers_mut();
    h.insert("cache-control", HeaderValue::from_static("no-store"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    r
}

fn staff_pages() -> Router<AppState> {
    Router::new()
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route(
            "/account/password",
            get(login::password_form).post(login::change_password),
        )
        .route("/", get(home::page))
        .route("/approvals", get(home::approvals))
        .route("/people", get(people::page))
        .route("/people/new", get(people::new_form).post(people::create))
        .route("/people/{id}", get(people::person))
        .route("/people/{id}/erase", post(people::erase))
        .route(
            "/import",
            get(import::form)
                .post(import::upload)
                .layer(axum::extract::DefaultBodyLimit::max(
                    crate::api::import::MAX_FILE,
                )),
        )
        .route("/import/{stash}/confirm", post(import::confirm))
        .route("/import/{stash}/errors.xlsx", get(import::errors))
        .route(
            "/templates/new",
            get(compose::template_form).post(compose::create_template),
        )
        .route(
            "/campaigns/new",
            get(compose::campaign_form).post(compose::create_campaign),
        )
        .route("/audit", get(audit::page))
        .route("/library", get(library::page))
        .route("/library/{id}/publish", post(library::publish))
        .route("/users", get(users::list))
        .route("/users/{id}", get(users::one))
        .route("/users/{id}/password", post(users::set_password))
        .route("/users/{id}/sessions", post(users::end_sessions))
        .route("/users/{id}/tokens", post(users::create_token))
        .route(
            "/users/{id}/tokens/{token_id}/revoke",
            post(users::revoke_token),
        )
        .route("/campaigns/{id}", get(campaign::page))
        .route("/campaigns/{id}/progress", get(campaign::progress))
        .route("/campaigns/{id}/failures", get(failures::page))
        .route("/campaigns/{id}/failures.xlsx", get(failures::xlsx))
        .route("/campaigns/{id}/{action}", post(campaign::act))
        .route(
            "/campaigns/{id}/channels/{channel}/{action}",
            post(campaign::channel),
        )
}

/// What every staff page's layout needs: who is logged in, and the token its forms carry.
pub(crate) fn base(staff: &Staff, title: &str) -> Value {
    let p = &staff.actor.0;
    let role_names = p
        .roles
        .iter()
        .map(|r| labels::user_role(*r))
        .collect::<Vec<_>>()
        .join(", ");
    minijinja::context! {
        title,
        csrf => staff.csrf,
        me => minijinja::context! {
            username => p.username,
            role_names,
            is_approver => p.has(crate::domain::access::UserRole::Approver),
            is_admin => p.has(crate::domain::access::UserRole::Admin),
            is_author => p.has(crate::domain::access::UserRole::Author),
        },
    }
}

/// The address a request comes from, to throttle failed logins per address: the peer, or behind a
/// trusted proxy the last `X-Forwarded-For` entry (the one that proxy appended).
pub struct ClientAddr(pub String);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Self::Rejection> {
        if s.web.trust_forwarded_for
            && let Some(last) = parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .rfind(|v| v.parse::<std::net::IpAddr>().is_ok())
        {
            return Ok(ClientAddr(last.to_string()));
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string())
            .unwrap_or_else(|| "unknown".into());
        Ok(ClientAddr(peer))
    }
}
