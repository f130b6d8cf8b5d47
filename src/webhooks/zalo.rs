//! Zalo webhooks (OA and ZNS share one per app): `X-ZEvent-Signature: mac=sha256(app_id + raw body +
//! timestamp + OA secret key)` is checked, the event stored and answered at once, then processed:
//! received -> delivered, seen -> read, follow/unfollow -> whether the OA can reach the person.

use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::receipts::forward;
use crate::api::AppState;
use crate::clock::now_ms;
use crate::domain::Channel;
use crate::store::{EventOutcome, Receipt, Store, StoreError};

/// Big numeric ids arrive as strings or numbers; both become the same string.
fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The expected `mac` for a body: Zalo hashes app id, the raw body, the event's timestamp and the
/// OA secret key, in that order.
pub fn mac(app_id: &str, body: &[u8], timestamp: &str, oa_secret: &str) -> String {
    let mut h = Sha256::new();
    h.update(app_id.as_bytes());
    h.update(body);
    h.update(timestamp.as_bytes());
    h.update(oa_secret.as_bytes());
    hex::encode(h.finalize())
}

pub async fn receive(
    s: &AppState,
    provider: &str,
    app_id: &str,
    oa_secret: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> (StatusCode, &'static str) {
    let Some(given) = headers
        .get("x-zevent-signature")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.trim()
                .strip_prefix("mac=")
                .unwrap_or(v.trim())
                .to_ascii_lowercase()
        })
    else {
        tracing::warn!(provider, "Zalo event without a signature refused");
        return (StatusCode::UNAUTHORIZED, "missing signature");
    };
    // The timestamp is part of what is signed, so the body is read (not trusted) to find it.
    let Ok(event) = serde_json::from_slice::<Value>(body) else {
        return (StatusCode::BAD_REQUEST, "body is not JSON");
    };
    let timestamp = event.get("timestamp").and_then(id_text).unwrap_or_default();
    if !super::same(
        given.as_bytes(),
        mac(app_id, body, &timestamp, oa_secret).as_bytes(),
    ) {
        tracing::warn!(provider, "Zalo event with a bad signature refused");
        return (StatusCode::UNAUTHORIZED, "bad signature");
    }
    if event
        .get("app_id")
        .and_then(id_text)
        .is_some_and(|a| a != app_id)
    {
        return (StatusCode::UNAUTHORIZED, "event for another app");
    }
    super::events::store(s, provider, body).await
}

/// The message ids an event names, nested under `message` or (as some ZNS events show) at the top.
fn field<'a>(event: &'a Value, name: &str) -> Option<&'a Value> {
    event
        .get("message")
        .and_then(|m| m.get(name))
        .or_else(|| event.get(name))
}

/// Applies one stored Zalo event.
pub async fn process(s: &AppState, body: &str) -> Result<EventOutcome, StoreError> {
    let Ok(event) = serde_json::from_str::<Value>(body) else {
        return Ok(EventOutcome::Malformed);
    };
    let store: &dyn Store = s.store.as_ref();
    let name = event
        .get("event_name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut changed = false;
    match name {
        "user_received_message" => {
            // ZNS: tracking_id is our delivery id. OA: Zalo's msg_id, looked up.
            let id = match field(&event, "tracking_id").and_then(id_text) {
                Some(t) => t.parse::<i64>().ok(),
                None => match field(&event, "msg_id").and_then(id_text) {
                    Some(m) => store.delivery_by_ref(Channel::Zalo, &m).await?,
                    None => None,
                },
            };
            if let Some(id) = id {
                changed = forward(s, id, None, Receipt::Delivered).await?;
            }
        }
        "user_seen_message" => {
            let mut ids: Vec<String> = field(&event, "msg_ids")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(id_text).collect())
                .unwrap_or_default();
            ids.extend(field(&event, "msg_id").and_then(id_text));
            for m in ids {
                if let Some(id) = store.delivery_by_ref(Channel::Zalo, &m).await? {
                    changed |= forward(s, id, None, Receipt::Read).await?;
                }
            }
        }
        "follow" | "unfollow" => {
            let user = event
                .get("follower")
                .and_then(|f| f.get("id"))
                .or_else(|| event.get("sender").and_then(|f| f.get("id")))
                .and_then(id_text);
            if let Some(user) = user {
                changed = store
                    .set_zalo_following(&user, name == "follow", now_ms())
                    .await?
                    > 0;
            }
        }
        _ => return Ok(EventOutcome::Ignored),
    }
    Ok(if changed {
        EventOutcome::Applied
    } else {
        EventOutcome::Unknown
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_covers_every_part() {
        let m = mac("app", b"{}", "1", "secret");
        assert_eq!(m.len(), 64);
        assert_ne!(m, mac("app", b"{} ", "1", "secret"));
        assert_ne!(m, mac("app", b"{}", "2", "secret"));
        assert_ne!(m, mac("app", b"{}", "1", "other"));
        // Known answer: sha256("app{}1secret").
        assert_eq!(m, hex::encode(Sha256::digest(b"app{}1secret")));
    }
}
