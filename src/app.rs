//! Wiring: opens the store, builds providers and links from the config, and runs the HTTP server,
//! the scheduler and the dispatcher in one process until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::{self, AppState};
use crate::config::Config;
use crate::dispatch::Dispatcher;
use crate::dispatch::registry::Registry;
use crate::links::Links;
use crate::scheduler::Scheduler;
use crate::store::Store;

pub struct App {
    pub state: AppState,
    pub addr: SocketAddr,
    pub dispatcher: Arc<Dispatcher>,
    pub scheduler: Arc<Scheduler>,
    /// The database this app opened (`database.url`), for a second instance on the same one.
    pub database_url: String,
    listener: TcpListener,
}

/// Opens the database named in the config and brings its schema up to date.
pub async fn open_store(cfg: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let password = cfg.database.password()?;
    let store = crate::store::open_with_password(&cfg.database.url, password.as_deref()).await?;
    store.migrate().await?;
    Ok(store)
}

fn random_secret() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

impl App {
    pub async fn build(cfg: &Config) -> anyhow::Result<App> {
        cfg.check()?;
        if crate::metrics::install().is_none() {
            tracing::warn!("another metrics recorder is installed; /metrics will answer 503");
        }
        let store = open_store(cfg).await?;
        let registry = Arc::new(Registry::from_config(cfg, &store).await?);
        let listener = TcpListener::bind(cfg.server.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", cfg.server.listen))?;
        let addr = listener.local_addr()?;
        // Kept in the database so callback URLs handed out before a restart stay valid.
        let secret = store
            .setting_or_insert("callback_secret", &random_secret())
            .await?;
        let links = Arc::new(Links::new(
            &cfg.server.public_url(addr),
            secret.as_bytes(),
            cfg.server.unsubscribe_mailto.clone(),
        ));
        let dispatch_wake = Arc::new(Notify::new());
        let scheduler_wake = Arc::new(Notify::new());
        let dispatcher = Arc::new(Dispatcher::new(
            store.clone(),
            registry.clone(),
            links.clone(),
            cfg.dispatch.clone(),
            crate::dispatch::QuietPolicy::from_config(&cfg.schedule)?,
            dispatch_wake.clone(),
        ));
        let scheduler = Arc::new(Scheduler::new(
            store.clone(),
            cfg.schedule.grace_ms(),
            scheduler_wake.clone(),
            dispatch_wake.clone(),
        ));
        let state = AppState {
            store,
            registry,
            links,
            scheduler_wake,
            dispatch_wake,
            webhook_wake: Arc::new(Notify::new()),
            prices: Arc::new(cfg.prices.clone()),
            readiness: Arc::default(),
            web: Arc::new(crate::web::session::WebSettings::new(
                &cfg.web,
                &cfg.server.public_url(addr),
            )),
        };
        Ok(App {
            state,
            addr,
            dispatcher,
            scheduler,
            database_url: cfg.database.url.clone(),
            listener,
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Starts the server, scheduler and dispatcher; they stop when `shutdown` is cancelled.
    pub fn spawn(self, shutdown: CancellationToken) -> Running {
        self.spawn_with(shutdown, true)
    }

    /// As `spawn`, optionally without the dispatcher (tests drive their own, to crash it on purpose).
    pub fn spawn_with(self, shutdown: CancellationToken, with_dispatcher: bool) -> Running {
        let router = router(self.state.clone());
        let server = {
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                // The peer's address is what failed logins are throttled by.
                axum::serve(
                    self.listener,
                    router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
                )
                .with_graceful_shutdown(async move { shutdown.cancelled().await })
                .await
                .map_err(anyhow::Error::from)
            })
        };
        let scheduler = tokio::spawn(self.scheduler.clone().run(shutdown.clone()));
        let events = tokio::spawn(crate::webhooks::events::run(
            self.state.clone(),
            shutdown.clone(),
        ));
        let dispatcher = if with_dispatcher {
            let running = self
                .state
                .readiness
                .dispatcher_started(self.dispatcher.health());
            let dispatcher = self.dispatcher.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let _running = running;
                dispatcher.run(shutdown).await
            })
        } else {
            tokio::spawn(async {})
        };
        Running {
            state: self.state,
            addr: self.addr,
            server,
            scheduler,
            dispatcher,
            events,
        }
    }
}

pub struct Running {
    pub state: AppState,
    pub addr: SocketAddr,
    server: JoinHandle<anyhow::Result<()>>,
    scheduler: JoinHandle<()>,
    dispatcher: JoinHandle<()>,
    events: JoinHandle<()>,
}

impl Running {
    /// Waits for everything to stop after shutdown was requested.
    pub async fn join(self) -> anyhow::Result<()> {
        let _ = self.scheduler.await;
        let _ = self.dispatcher.await;
        let _ = self.events.await;
        match tokio::time::timeout(Duration::from_secs(5), self.server).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Ok(()),
        }
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .nest("/api/v1", api::router())
        .merge(crate::webhooks::router())
        .merge(crate::web::router())
        .route("/healthz", axum::routing::get(crate::health::healthz))
        .route("/readyz", axum::routing::get(crate::health::readyz))
        .route("/metrics", axum::routing::get(crate::metrics::route))
        // Every error is the JSON error body, unknown routes and wrong methods included.
        .fallback(|| async { api::error::AppError::no_route() })
        .method_not_allowed_fallback(|| async { api::error::AppError::method_not_allowed() })
        // The hard cap; JSON and webhook bodies keep axum's 2 MB default, the roster import its own.
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            api::import::MAX_FILE,
        ))
        .layer(
            tower_http::trace::TraceLayer::new_for_http().make_span_with(
                |req: &axum::http::Request<axum::body::Body>| {
                    tracing::debug_span!(
                        "request",
                        method = %req.method(),
                        path = %logged_path(req.uri().path()),
                    )
                },
            ),
        )
        .with_state(state)
}

/// What the request log shows of a URL: the path without its query (webhook tokens, Facebook's
/// verify token, report signatures and unsubscribe channels travel there), and with the token of
/// a link that acts for a person (`/u/<token>`, the unsubscribe link) or names an upload
/// (`/import/<token>/...`) replaced by `…`. Nothing
/// else is logged of a request: no headers (the API token), no body.
pub fn logged_path(path: &str) -> String {
    if path.starts_with("/u/") {
        return "/u/…".to_string();
    }
    // An upload waiting on the import page is named by a random token in its path.
    if let Some(rest) = path.strip_prefix("/import/") {
        let tail = rest.split_once('/').map(|(_, t)| t).unwrap_or("");
        return format!("/import/…/{tail}").chars().take(200).collect();
    }
    path.chars().take(200).collect()
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutdown requested");
}

#[cfg(test)]
mod tests {
    use super::logged_path;

    #[test]
    fn the_request_log_keeps_no_token_of_a_path() {
        assert_eq!(logged_path("/u/8-c0ffee"), "/u/…");
        assert_eq!(
            logged_path("/import/loa_c0ffee/confirm"),
            "/import/…/confirm"
        );
        assert_eq!(logged_path("/import"), "/import");
        assert_eq!(logged_path("/webhooks/speedsms"), "/webhooks/speedsms");
        assert_eq!(logged_path("/api/v1/contacts/7"), "/api/v1/contacts/7");
    }
}
