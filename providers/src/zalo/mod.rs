//! Zalo: the OA access-token manager shared by Zalo adapters, the ZNS adapter, and how Zalo's JSON
//! `error` codes are classified (HTTP status is 200 even when a send fails).

pub mod oa;
pub mod token;
pub mod zns;

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::{Accepted, SendError};
use token::TokenManager;

/// Zalo's reply envelope, shared by OA and ZNS: `error` 0 is success whatever the HTTP status says.
#[derive(Deserialize)]
pub(crate) struct Reply {
    pub error: Option<NumOrString>,
    pub message: Option<String>,
    pub data: Option<serde_json::Value>,
}

impl Reply {
    /// A string or number field of `data` (`msg_id` for ZNS, `message_id` for OA).
    pub fn data_id(&self, field: &str) -> Option<String> {
        match self.data.as_ref()?.get(field)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

impl Reply {
    /// The envelope judged: accepted (Zalo's id from `data.<id_field>`) when `error` is 0, else the
    /// adapter's classification of the code. `by_id`: receipts will name the message only by that id.
    pub fn judge(
        self,
        classify: fn(i64, &str, SystemTime) -> Outcome,
        id_field: &str,
        by_id: bool,
    ) -> Result<Accepted, Outcome> {
        let code = self.error.as_ref().and_then(|e| e.as_i64()).unwrap_or(-1);
        if code != 0 {
            return Err(classify(
                code,
                self.message.as_deref().unwrap_or(""),
                SystemTime::now(),
            ));
        }
        Ok(Accepted {
            provider_message_id: self.data_id(id_field),
            delivered: false,
            receipt_by_provider_id: by_id,
        })
    }
}

/// What a non-zero `error` means for Loa.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    TokenInvalid,
    Failed(SendError),
}

/// POSTs a JSON body with the token in the `access_token` header and reads Zalo's envelope. 5xx and
/// 429 are transient; anything else is judged by the JSON `error` field.
pub(crate) async fn post(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    body: &impl Serialize,
    what: &str,
) -> Result<Reply, SendError> {
    let resp = http
        .post(url)
        .header("access_token", token)
        .json(body)
        .send()
        .await
        .map_err(|e| crate::unreachable(what, e))?;
    if let Some(e) = crate::throttled(what, &resp) {
        return Err(e);
    }
    let status = resp.status();
    if status.is_server_error() || status.as_u16() == 429 {
        return Err(SendError::transient(format!(
            "{what} answered HTTP {status}"
        )));
    }
    resp.json().await.map_err(|e| {
        SendError::transient(format!("{what} answered HTTP {status}, unreadable: {e}"))
    })
}

/// Runs one send with the current access token; when Zalo calls the token invalid, refreshes it (or
/// picks up another sender's refresh) and retries once.
pub(crate) async fn with_token<F, Fut>(
    tokens: &TokenManager,
    send: F,
) -> Result<Accepted, SendError>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<Result<Accepted, Outcome>, SendError>>,
{
    let token = tokens.access_token().await.map_err(SendError::transient)?;
    match send(token.clone()).await? {
        Err(Outcome::TokenInvalid) => {}
        Ok(a) => return Ok(a),
        Err(Outcome::Failed(e)) => return Err(e),
    }
    let token = tokens
        .refresh_after_rejection(&token)
        .await
        .map_err(SendError::transient)?;
    match send(token).await? {
        Ok(a) => Ok(a),
        Err(Outcome::Failed(e)) => Err(e),
        Err(Outcome::TokenInvalid) => Err(SendError::transient(
            "Zalo refused a freshly refreshed access token",
        )),
    }
}

/// A number Zalo may send as a JSON string or a JSON number (`expires_in`, quota fields).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum NumOrString {
    Num(i64),
    Str(String),
}

impl NumOrString {
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            NumOrString::Num(n) => Some(*n),
            NumOrString::Str(s) => s.trim().parse().ok(),
        }
    }
}

/// Time left until the next 00:00 in Asia/Ho_Chi_Minh (UTC+7 all year, no daylight saving), when a
/// ZNS daily quota starts again.
pub fn until_next_vn_midnight(now: SystemTime) -> Duration {
    const DAY: u64 = 86_400;
    const VN_OFFSET: u64 = 7 * 3600;
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let local = secs + VN_OFFSET;
    Duration::from_secs(DAY - local % DAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_resets_at_vietnamese_midnight() {
        // 2026-11-23 16:59:00 UTC is 23:59 in Hà Nội: one minute to go.
        let t = UNIX_EPOCH + Duration::from_secs(1_795_453_140);
        assert_eq!(until_next_vn_midnight(t), Duration::from_secs(60));
        // 17:00 UTC is 00:00 local: a whole day to go.
        let t = UNIX_EPOCH + Duration::from_secs(1_795_453_200);
        assert_eq!(until_next_vn_midnight(t), Duration::from_secs(86_400));
    }

    #[test]
    fn numbers_arrive_as_strings_or_numbers() {
        let a: NumOrString = serde_json::from_str("\"90000\"").unwrap();
        let b: NumOrString = serde_json::from_str("90000").unwrap();
        assert_eq!(a.as_i64(), Some(90_000));
        assert_eq!(b.as_i64(), Some(90_000));
    }
}
