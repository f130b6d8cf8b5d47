//! eSMS delivery callbacks: a GET to the CallbackUrl Loa handed over (signed over the delivery id), with
//! eSMS's `SMSID, SendStatus, RequestId, SendSuccess, SendFailed` added. SendStatus 5 = finished.

use axum::http::StatusCode;
use serde::Deserialize;

use super::receipts::{answer, forward, signed_id, undelivered};
use crate::api::AppState;
use crate::store::Receipt;

#[derive(Deserialize)]
struct Callback {
    id: Option<String>,
    at: Option<String>,
    sig: Option<String>,
    #[serde(rename = "RequestId")]
    request_id: Option<String>,
    #[serde(rename = "SendStatus")]
    send_status: Option<String>,
    #[serde(rename = "SendSuccess")]
    send_success: Option<String>,
    #[serde(rename = "SendFailed")]
    send_failed: Option<String>,
}

fn count(v: &Option<String>) -> i64 {
    v.as_deref()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

pub async fn report(s: &AppState, query: &str) -> (StatusCode, &'static str) {
    let Ok(c) = serde_urlencoded::from_str::<Callback>(query) else {
        return (StatusCode::BAD_REQUEST, "unreadable query");
    };
    let (id, at) = match signed_id(s, c.id.as_deref(), c.at.as_deref(), c.sig.as_deref()) {
        Ok(v) => v,
        Err(why) => return (StatusCode::UNAUTHORIZED, why),
    };
    if c.request_id.as_deref().is_some_and(|r| r != id.to_string()) {
        return (
            StatusCode::BAD_REQUEST,
            "RequestId does not match the callback",
        );
    }
    // Only a finished send says anything about the phone.
    if c.send_status.as_deref().map(str::trim) != Some("5") {
        return (StatusCode::OK, "ok");
    }
    let result = if count(&c.send_success) > 0 {
        forward(s, id, Some(at), Receipt::Delivered)
            .await
            .map(|_| ())
    } else if count(&c.send_failed) > 0 {
        undelivered(s, id, Some(at), "eSMS: not delivered to the phone")
            .await
            .map(|_| ())
    } else {
        Ok(())
    };
    answer(result, "eSMS")
}
