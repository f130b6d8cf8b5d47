//! Provider callbacks -> delivery events. Signatures are verified before anything is read or recorded.

pub mod kannel;

use axum::Router;
use axum::routing::get;

use crate::api::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/webhooks/{provider}", get(kannel::report))
}
