//! Server-rendered pages for parents and staff (Vietnamese UI) on the same server as the API.

pub mod unsubscribe;

use axum::Router;
use axum::routing::get;

use crate::api::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/u/{token}",
        get(unsubscribe::page).post(unsubscribe::confirm),
    )
}
