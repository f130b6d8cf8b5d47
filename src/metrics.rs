//! Prometheus metrics for operators: the process-wide recorder, the names Loa records under (one
//! function per event, so names and labels stay in one place) and the `/metrics` route.

use std::sync::OnceLock;
use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::api::Actor;
use crate::api::error::AppError;

/// Seconds: sends to providers take milliseconds to the provider's timeout; claims and writes
/// take microseconds to a slow disk's seconds.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// How often histogram samples are drained into their buckets when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Installs the recorder once per process (several apps in one test process share it). `None` when
/// another recorder was installed first, in which case `/metrics` says so.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            // The recorder keeps every histogram sample it is given until they are drained into
            // the buckets, which only `render` (a scrape) and `run_upkeep` do: with nobody scraping
            // `/metrics`, each send, claim and write added its sample for good (about 15 MB over
            // the benchmark's million-person run, and without end in a daemon nobody scrapes).
            // A thread of its own, not a task: the recorder outlives any one runtime (tests build
            // several apps in one process).
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_EVERY);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "metrics upkeep thread not started; histograms drain only when scraped");
            }
            Some(handle)
        })
        .as_ref()
}

/// `GET /metrics`: the Prometheus text format, for an operator's token only (the counts cover every
/// node of the installation). Prometheus sends it with `authorization: {credentials_file: ...}`.
pub async fn route(Actor(p): Actor) -> Response {
    if !p.is_operator() || !p.roles.contains(&crate::domain::access::UserRole::Admin) {
        return crate::api::auth::forbidden().into_response();
    }
    match HANDLE.get().and_then(|h| h.as_ref()) {
        Some(h) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            h.render(),
        )
            .into_response(),
        None => AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics_unavailable",
            "Chưa bật số liệu vận hành trong tiến trình này.",
        )
        .into_response(),
    }
}

/// One send's result as the provider classified it (`ok`, `transient`, `rate_limited`,
/// `permanent`, `campaign_fault`) and how long the provider took.
pub fn send(provider: &str, channel: &'static str, result: &'static str, took: Duration) {
    counter!("loa_sends_total", "provider" => provider.to_owned(), "channel" => channel, "result" => result)
        .increment(1);
    histogram!("loa_send_seconds", "provider" => provider.to_owned()).record(took.as_secs_f64());
}

/// A send to a provider under way: counted in `loa_sends_in_flight` until dropped.
pub struct InFlight(());

impl InFlight {
    pub fn start() -> InFlight {
        gauge!("loa_sends_in_flight").increment(1.0);
        InFlight(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        gauge!("loa_sends_in_flight").decrement(1.0);
    }
}

/// Deliveries claimed and waiting in this process for their channel's rate limiter.
pub fn held(n: usize) {
    gauge!("loa_deliveries_held").set(n as f64);
}

pub fn claim(took: Duration, claimed: usize) {
    histogram!("loa_claim_seconds").record(took.as_secs_f64());
    counter!("loa_claimed_total").increment(claimed as u64);
}

/// One commit of outcomes; `states` are the outcomes' states and channels.
pub fn recorded(
    took: Duration,
    ok: bool,
    states: impl Iterator<Item = (&'static str, &'static str)>,
) {
    histogram!("loa_record_seconds").record(took.as_secs_f64());
    if !ok {
        counter!("loa_record_failures_total").increment(1);
        return;
    }
    for (state, channel) in states {
        counter!("loa_outcomes_total", "state" => state, "channel" => channel).increment(1);
    }
}

/// A send held back by its provider's rate limit.
pub fn rate_limited(channel: &'static str) {
    counter!("loa_rate_limit_waits_total", "channel" => channel).increment(1);
}

pub fn webhook_event(provider: &str, outcome: &'static str) {
    counter!("loa_webhook_events_total", "provider" => provider.to_owned(), "outcome" => outcome)
        .increment(1);
}

/// A run the scheduler created: `once` for a scheduled campaign, `slot` for a recurring one's.
pub fn scheduler_run(kind: &'static str) {
    counter!("loa_scheduler_runs_total", "kind" => kind).increment(1);
}
