//! The JSON HTTP API under `/api/v1`: one router per area and the shared state. Every route takes the
//! acting user (`auth::Actor`) and checks role and scope before touching data.

mod audit;
pub mod auth;
pub mod campaigns;
pub(crate) mod contacts;
pub mod error;
pub mod import;
mod orgs;
pub(crate) mod templates;
pub mod users;
mod webhooks;

use std::sync::Arc;

use axum::Router;
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
    /// For the cost preview.
    pub prices: Arc<crate::config::Prices>,
    /// What `/readyz` reports of the dispatcher.
    pub readiness: Arc<crate::health::Readiness>,
    /// The staff pages' sessions and login throttle.
    pub web: Arc<crate::web::session::WebSettings>,
}

pub use auth::Actor;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(orgs::router())
        .merge(contacts::router())
        .merge(import::router())
        .merge(templates::router())
        .merge(campaigns::router())
        .merge(webhooks::router())
        .merge(users::router())
        .merge(audit::router())
        .fallback(|| async { AppError::no_route() })
        .method_not_allowed_fallback(|| async { AppError::method_not_allowed() })
}
