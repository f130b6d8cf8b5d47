//! Kannel delivery reports (`dlr-url`): type 1 delivered, 2 or 16 not delivered (the person moves to
//! their next channel), 4 and 8 intermediate. The URL carries our signature over the delivery id.

use axum::http::StatusCode;
use serde::Deserialize;

use super::receipts::{answer, forward, signed_id, undelivered};
use crate::api::AppState;
use crate::store::Receipt;

#[derive(Deserialize)]
struct Report {
    id: Option<String>,
    at: Option<String>,
    sig: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    reply: Option<String>,
}

pub async fn report(s: &AppState, query: &str) -> (StatusCode, &'static str) {
    let Ok(r) = serde_urlencoded::from_str::<Report>(query) else {
        return (StatusCode::BAD_REQUEST, "unreadable query");
    };
    let (id, at) = match signed_id(s, r.id.as_deref(), r.at.as_deref(), r.sig.as_deref()) {
        Ok(v) => v,
        Err(why) => return (StatusCode::UNAUTHORIZED, why),
    };
    let kind: u32 = r.kind.as_deref().and_then(|k| k.parse().ok()).unwrap_or(0);
    let result = match kind {
        1 => forward(s, id, Some(at), Receipt::Delivered)
            .await
            .map(|_| ()),
        2 | 16 => {
            let reply = r.reply.unwrap_or_default();
            let detail = if reply.is_empty() {
                "not delivered to the phone".to_string()
            } else {
                format!("not delivered: {reply}")
            };
            undelivered(s, id, Some(at), &detail).await.map(|_| ())
        }
        _ => Ok(()),
    };
    answer(result, "Kannel")
}
