//! The JSON HTTP API under `/api/v1`: one router per area, shared state, and the acting user every
//! handler receives (authentication and roles plug in there).

pub mod campaigns;
mod contacts;
pub mod error;
pub mod import;
mod orgs;
mod templates;
mod webhooks;

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use tokio::sync::Notify;

use crate::dispatch::registry::Registry;
use crate::links::Links;
use crate::store::Store;
use error::AppError;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub registry: Arc<Registry>,
    pub links: Arc<Links>,
    pub scheduler_wake: Arc<Notify>,
    pub dispatch_wake: Arc<Notify>,
    /// Notified when a webhook event is stored, to process it at once.
    pub webhook_wake: Arc<Notify>,
}

/// Who is acting. Until authentication lands every request acts as the local operator; handlers take
/// it already so that role and scope checks slot in without changing their signatures.
#[derive(Clone, Debug)]
pub enum Actor {
    LocalOperator,
}

impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = Infallible;
    async fn from_request_parts(_parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Actor::LocalOperator)
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(orgs::router())
        .merge(contacts::router())
        .merge(import::router())
        .merge(templates::router())
        .merge(campaigns::router())
        .merge(webhooks::router())
        .fallback(|| async {
            AppError::new(StatusCode::NOT_FOUND, "not_found", "no such API route")
        })
}
