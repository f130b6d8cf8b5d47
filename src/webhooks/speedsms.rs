//! SpeedSMS delivery reports, POSTed as JSON `{"type":"report","tranId":..,"phone":"..","status":..}`
//! (format unconfirmed by public docs: `status` 0 is taken as delivered, anything else as not). SpeedSMS
//! signs nothing, so the URL must carry the configured `?token=`.

use axum::http::StatusCode;
use serde::Deserialize;

use super::receipts::{answer, forward, undelivered};
use crate::api::AppState;
use crate::domain::Channel;
use crate::store::Receipt;

#[derive(Deserialize)]
struct Auth {
    token: Option<String>,
}

#[derive(Deserialize)]
struct Report {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(rename = "tranId")]
    tran_id: Option<serde_json::Value>,
    status: Option<serde_json::Value>,
}

fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.trim().to_string(),
        other => other.to_string(),
    }
}

pub async fn report(
    s: &AppState,
    token: &str,
    query: &str,
    body: &[u8],
) -> (StatusCode, &'static str) {
    let given = serde_urlencoded::from_str::<Auth>(query)
        .ok()
        .and_then(|a| a.token)
        .unwrap_or_default();
    if !super::same(given.as_bytes(), token.as_bytes()) {
        tracing::warn!("SpeedSMS report with a missing or wrong token refused");
        return (StatusCode::UNAUTHORIZED, "bad token");
    }
    let Ok(r) = serde_json::from_slice::<Report>(body) else {
        return (StatusCode::BAD_REQUEST, "unreadable report");
    };
    if r.kind.as_deref().is_some_and(|k| k != "report") {
        return (StatusCode::OK, "ignored");
    }
    let Some(tran) = r.tran_id.as_ref().map(text) else {
        return (StatusCode::BAD_REQUEST, "report without tranId");
    };
    let result = async {
        let Some(id) = s.store.delivery_by_ref(Channel::Sms, &tran).await? else {
            tracing::info!("SpeedSMS report for an unknown transaction");
            return Ok(false);
        };
        match r.status.as_ref().map(text).as_deref() {
            Some("0") => forward(s, id, None, Receipt::Delivered).await,
            Some(code) => {
                undelivered(
                    s,
                    id,
                    None,
                    &format!("SpeedSMS: not delivered (status {code})"),
                )
                .await
            }
            None => Ok(false),
        }
    }
    .await;
    answer(result, "SpeedSMS")
}
