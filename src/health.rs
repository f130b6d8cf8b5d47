//! The operator's probes: `/healthz` says the process answers, `/readyz` whether this instance can
//! do its work (database reachable, schema at this build's head, dispatcher running, writes going).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::api::AppState;
use crate::dispatch::complete::Health;

/// What `/readyz` knows of the dispatcher, shared with the task that runs it.
#[derive(Default)]
pub struct Readiness {
    dispatcher_running: AtomicBool,
    writes: std::sync::OnceLock<Arc<Health>>,
}

impl Readiness {
    /// Called by the dispatcher's task when it starts; the returned guard marks it stopped when the
    /// task ends, returns or panics alike.
    pub fn dispatcher_started(self: &Arc<Self>, health: Arc<Health>) -> RunningGuard {
        let _ = self.writes.set(health);
        self.dispatcher_running.store(true, Ordering::Release);
        RunningGuard(self.clone())
    }
}

pub struct RunningGuard(Arc<Readiness>);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.dispatcher_running.store(false, Ordering::Release);
    }
}

pub async fn healthz() -> &'static str {
    "ok"
}

/// 200 with every check "ok" when ready, else 503 with the checks that failed. Unauthenticated, as
/// load balancers and Kubernetes call it: it says nothing about the data, only what is wrong.
pub async fn readyz(State(st): State<AppState>) -> Response {
    let database = match st.store.readiness().await {
        Ok(()) => "ok".to_string(),
        Err(crate::store::StoreError::Invalid(why)) => why,
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database check failed");
            "database unreachable".to_string()
        }
    };
    let dispatcher = if st.readiness.dispatcher_running.load(Ordering::Acquire) {
        "ok"
    } else {
        "not running"
    };
    let writes = match st.readiness.writes.get() {
        Some(h) if h.failing() => "failing",
        _ => "ok",
    };
    let ready = database == "ok" && dispatcher == "ok" && writes == "ok";
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "ready": ready,
        "checks": { "database": database, "dispatcher": dispatcher, "writes": writes },
    });
    (code, Json(body)).into_response()
}
