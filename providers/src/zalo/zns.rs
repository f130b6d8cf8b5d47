//! Zalo ZNS: pre-approved template messages to a phone number (`POST /message/template`), with the
//! delivery id as `tracking_id` and every documented error code classified.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::token::TokenManager;
use super::{NumOrString, until_next_vn_midnight};
use crate::{Accepted, Channel, Message, Provider, SendError, http_client, wire_phone};

#[derive(Clone, Debug)]
pub struct ZnsSettings {
    /// `https://business.openapi.zalo.me`
    pub base_url: String,
    /// Sends with `"mode":"development"` (Zalo's sandbox for a template still in review).
    pub development: bool,
    pub timeout: Duration,
}

pub struct ZnsProvider {
    name: String,
    url: String,
    development: bool,
    http: reqwest::Client,
    tokens: Arc<TokenManager>,
}

#[derive(Serialize)]
struct Body<'a> {
    phone: &'a str,
    template_id: &'a str,
    template_data: &'a std::collections::BTreeMap<String, String>,
    tracking_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    mode: Option<&'a str>,
}

#[derive(Deserialize)]
struct Reply {
    error: Option<NumOrString>,
    message: Option<String>,
    data: Option<ReplyData>,
}

#[derive(Deserialize)]
struct ReplyData {
    msg_id: Option<NumOrString>,
}

/// What a non-zero `error` means for Loa.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    TokenInvalid,
    Failed(SendError),
}

/// Zalo's codes, classified once. Person-level refusals are permanent for this channel (the person
/// falls back to the next one); template errors are permanent too (every person would get the same).
fn classify(code: i64, message: &str, now: SystemTime) -> Outcome {
    let reason = format!("Zalo {code}: {message}");
    match code {
        -124 | -216 => Outcome::TokenInvalid,
        // Daily quota used up (the number is not confirmed by Zalo's public docs): not before tomorrow.
        -115 => Outcome::Failed(SendError::RateLimited {
            reason,
            retry_after: Some(until_next_vn_midnight(now)),
        }),
        // Over Zalo's request rate.
        -32 => Outcome::Failed(SendError::RateLimited {
            reason,
            retry_after: Some(Duration::from_secs(1)),
        }),
        // Everything else is permanent: the person's (-108 phone invalid, -114 inactive or refused
        // ZNS, -118 not on Zalo) and the template's (-109 id invalid, -111/-112 data empty or invalid).
        _ => Outcome::Failed(SendError::permanent(reason)),
    }
}

impl ZnsProvider {
    pub fn new(
        name: &str,
        settings: ZnsSettings,
        tokens: Arc<TokenManager>,
    ) -> Result<Self, String> {
        Ok(ZnsProvider {
            name: name.into(),
            url: format!(
                "{}/message/template",
                settings.base_url.trim_end_matches('/')
            ),
            development: settings.development,
            http: http_client(settings.timeout)?,
            tokens,
        })
    }

    async fn post(
        &self,
        token: &str,
        body: &Body<'_>,
    ) -> Result<Result<Accepted, Outcome>, SendError> {
        let resp = self
            .http
            .post(&self.url)
            .header("access_token", token)
            .json(body)
            .send()
            .await
            .map_err(|e| SendError::transient(format!("ZNS unreachable: {e}")))?;
        let status = resp.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(SendError::transient(format!("ZNS answered HTTP {status}")));
        }
        let reply: Reply = resp.json().await.map_err(|e| {
            SendError::transient(format!("ZNS answered HTTP {status}, unreadable: {e}"))
        })?;
        let code = reply.error.and_then(|e| e.as_i64()).unwrap_or(-1);
        if code == 0 {
            let id = reply.data.and_then(|d| d.msg_id).map(|m| match m {
                NumOrString::Num(n) => n.to_string(),
                NumOrString::Str(s) => s,
            });
            return Ok(Ok(Accepted {
                provider_message_id: id,
                delivered: false,
            }));
        }
        Ok(Err(classify(
            code,
            reply.message.as_deref().unwrap_or(""),
            SystemTime::now(),
        )))
    }
}

#[async_trait::async_trait]
impl Provider for ZnsProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn channel(&self) -> Channel {
        Channel::ZaloZns
    }

    async fn send(&self, msg: &Message) -> Result<Accepted, SendError> {
        let zns = msg
            .zns
            .as_ref()
            .ok_or_else(|| SendError::permanent("no ZNS template for this message"))?;
        let body = Body {
            phone: wire_phone(&msg.to),
            template_id: &zns.template_id,
            template_data: &zns.data,
            tracking_id: &msg.id,
            mode: self.development.then_some("development"),
        };
        let mut token = self
            .tokens
            .access_token()
            .await
            .map_err(SendError::transient)?;
        match self.post(&token, &body).await? {
            Err(Outcome::TokenInvalid) => {}
            Ok(a) => return Ok(a),
            Err(Outcome::Failed(e)) => return Err(e),
        }
        // Refresh (or pick up another sender's refresh) and retry once.
        token = self
            .tokens
            .refresh_after_rejection(&token)
            .await
            .map_err(SendError::transient)?;
        match self.post(&token, &body).await? {
            Ok(a) => Ok(a),
            Err(Outcome::Failed(e)) => Err(e),
            Err(Outcome::TokenInvalid) => Err(SendError::transient(
                "Zalo refused a freshly refreshed access token",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified() {
        let now = SystemTime::now();
        assert_eq!(classify(-216, "", now), Outcome::TokenInvalid);
        assert_eq!(classify(-124, "", now), Outcome::TokenInvalid);
        assert!(matches!(
            classify(-118, "", now),
            Outcome::Failed(SendError::Permanent { .. })
        ));
        match classify(-115, "quota", now) {
            Outcome::Failed(SendError::RateLimited {
                retry_after: Some(d),
                ..
            }) => assert!(d <= Duration::from_secs(86_400)),
            other => panic!("{other:?}"),
        }
    }
}
