//! The provider double for `loa bench`: a minimal HTTP server in its own process that accepts every
//! request at once (Kannel's `202 0: Accepted for delivery`) and records when each one arrived.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

type Arrivals = Arc<Mutex<Vec<i64>>>;

/// Wall-clock Unix nanoseconds: comparable between the bench and the double's process.
pub fn unix_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

async fn sendsms(State(a): State<Arrivals>) -> (axum::http::StatusCode, &'static str) {
    let t = unix_ns();
    if let Ok(mut v) = a.lock() {
        v.push(t);
    }
    (axum::http::StatusCode::ACCEPTED, "0: Accepted for delivery")
}

#[derive(Deserialize)]
struct From {
    from: Option<usize>,
}

async fn arrivals(State(a): State<Arrivals>, Query(f): Query<From>) -> Json<Vec<i64>> {
    let v = a
        .lock()
        .map(|v| v[f.from.unwrap_or(0).min(v.len())..].to_vec())
        .unwrap_or_default();
    Json(v)
}

async fn count(State(a): State<Arrivals>) -> String {
    a.lock().map(|v| v.len()).unwrap_or(0).to_string()
}

/// Runs the double (the hidden `bench-double` subcommand); prints `PORT <n>` once listening.
pub async fn serve(listen: std::net::SocketAddr) -> anyhow::Result<()> {
    let times: Arrivals = Arc::new(Mutex::new(Vec::with_capacity(1 << 20)));
    let app = Router::new()
        .route("/cgi-bin/sendsms", get(sendsms))
        .route("/arrivals", get(arrivals))
        .route("/count", get(count))
        .with_state(times);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("PORT {}", listener.local_addr()?.port());
    axum::serve(listener, app).await?;
    Ok(())
}

/// The double's process, killed when dropped.
pub struct Double {
    child: Child,
    pub base_url: String,
    http: reqwest::Client,
}

impl Drop for Double {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Double {
    pub fn spawn() -> anyhow::Result<Double> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["bench-double", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout from the double"))?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let port: u16 = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("the double said {line:?}"))?;
        Ok(Double {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        })
    }

    /// CPU time the double's process has used so far.
    pub fn cpu_used(&self) -> Option<std::time::Duration> {
        super::cpu::of_process(self.child.id())
    }

    pub async fn count(&self) -> anyhow::Result<usize> {
        Ok(self
            .http
            .get(format!("{}/count", self.base_url))
            .send()
            .await?
            .text()
            .await?
            .trim()
            .parse()?)
    }

    /// Arrival times (Unix ns) from the `from`-th request on.
    pub async fn arrivals(&self, from: usize) -> anyhow::Result<Vec<i64>> {
        Ok(self
            .http
            .get(format!("{}/arrivals?from={from}", self.base_url))
            .send()
            .await?
            .json()
            .await?)
    }
}
