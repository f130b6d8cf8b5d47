//! Facebook webhooks: the GET verify-token handshake, `X-Hub-Signature-256` (HMAC-SHA256 of the raw
//! body with the app secret), then `delivery` (mids and watermark) and `read` (watermark) events, a
//! watermark covering every earlier message to that person.

use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;

use super::receipts::forward;
use crate::api::AppState;
use crate::clock::now_ms;
use crate::domain::Channel;
use crate::store::{EventOutcome, Receipt, StoreError};

#[derive(Deserialize)]
struct Handshake {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

pub fn verify(expected: Option<&str>, query: &str) -> (StatusCode, String) {
    let Ok(h) = serde_urlencoded::from_str::<Handshake>(query) else {
        return (StatusCode::BAD_REQUEST, "unreadable query".into());
    };
    let ok = h.mode.as_deref() == Some("subscribe")
        && matches!((expected, h.token.as_deref()), (Some(e), Some(t)) if super::same(e.as_bytes(), t.as_bytes()));
    match (ok, h.challenge) {
        (true, Some(c)) => (StatusCode::OK, c),
        _ => {
            tracing::warn!("Facebook verification with a wrong token refused");
            (StatusCode::FORBIDDEN, "verification refused".into())
        }
    }
}

/// Checks `sha256=<hex>` against the body's HMAC, in constant time.
pub fn signature_ok(app_secret: &str, header: Option<&str>, body: &[u8]) -> bool {
    let Some(sig) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(sig) = hex::decode(sig) else {
        return false;
    };
    let Ok(mut m) = <Hmac<Sha256> as Mac>::new_from_slice(app_secret.as_bytes()) else {
        return false;
    };
    m.update(body);
    m.verify_slice(&sig).is_ok()
}

pub async fn receive(
    s: &AppState,
    provider: &str,
    app_secret: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> (StatusCode, &'static str) {
    let header = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    if !signature_ok(app_secret, header, body) {
        tracing::warn!(
            provider,
            "Facebook event with a missing or bad signature refused"
        );
        return (StatusCode::UNAUTHORIZED, "bad signature");
    }
    super::events::store(s, provider, body).await
}

fn ids(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|m| m.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Applies one stored Facebook event (an envelope of entries of messaging items).
pub async fn process(s: &AppState, body: &str) -> Result<EventOutcome, StoreError> {
    let Ok(event) = serde_json::from_str::<Value>(body) else {
        return Ok(EventOutcome::Malformed);
    };
    let mut used = false;
    let mut changed = false;
    // Collected first: iterator adapters holding closures must not live across an await.
    let mut items: Vec<Value> = Vec::new();
    for entry in event
        .get("entry")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(m) = entry.get("messaging").and_then(Value::as_array) {
            items.extend(m.iter().cloned());
        }
    }
    for item in &items {
        let psid = item
            .get("sender")
            .and_then(|x| x.get("id"))
            .and_then(Value::as_str)
            .unwrap_or("");
        for (key, receipt) in [("delivery", Receipt::Delivered), ("read", Receipt::Read)] {
            let Some(r) = item.get(key) else { continue };
            used = true;
            for mid in ids(r.get("mids")) {
                if let Some(id) = s.store.delivery_by_ref(Channel::Messenger, &mid).await? {
                    changed |= forward(s, id, None, receipt).await?;
                }
            }
            if let Some(w) = r.get("watermark").and_then(Value::as_i64)
                && !psid.is_empty()
            {
                changed |= s
                    .store
                    .apply_watermark(Channel::Messenger, psid, w, receipt, now_ms())
                    .await?
                    > 0;
            }
        }
    }
    Ok(match (used, changed) {
        (_, true) => EventOutcome::Applied,
        (true, false) => EventOutcome::Unknown,
        (false, false) => EventOutcome::Ignored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_of_the_raw_body() {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(b"secret").unwrap();
        m.update(b"{\"a\":1}");
        let good = format!("sha256={}", hex::encode(m.finalize().into_bytes()));
        assert!(signature_ok("secret", Some(&good), b"{\"a\":1}"));
        assert!(!signature_ok("secret", Some(&good), b"{\"a\":2}"));
        assert!(!signature_ok("other", Some(&good), b"{\"a\":1}"));
        assert!(!signature_ok("secret", None, b"{\"a\":1}"));
        assert!(!signature_ok("secret", Some("sha256=zz"), b"{\"a\":1}"));
    }

    #[test]
    fn handshake_echoes_the_challenge_only_for_our_token() {
        let q = "hub.mode=subscribe&hub.verify_token=tok&hub.challenge=123";
        assert_eq!(verify(Some("tok"), q), (StatusCode::OK, "123".into()));
        assert_eq!(verify(Some("other"), q).0, StatusCode::FORBIDDEN);
        assert_eq!(verify(None, q).0, StatusCode::FORBIDDEN);
    }
}
