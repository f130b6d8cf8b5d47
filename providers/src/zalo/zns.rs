//! Zalo ZNS: pre-approved template messages to a phone number (`POST /message/template`), with the
//! delivery id as `tracking_id` and every documented error code classified.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::token::TokenManager;
use super::{Outcome, until_next_vn_midnight, with_token};
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
        // The template's: every person of the campaign would get the same answer.
        -109 | -111 | -112 => Outcome::Failed(SendError::campaign(reason)),
        // Everything else is the person's (-108 phone invalid, -114 inactive or refused ZNS, -118 not
        // on Zalo) or unknown: permanent for this person on this channel, who falls back.
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
        token: String,
        body: &Body<'_>,
    ) -> Result<Result<Accepted, Outcome>, SendError> {
        let reply = super::post(&self.http, &self.url, &token, body, "ZNS").await?;
        // ZNS receipts carry our tracking_id (the delivery id): no lookup by msg_id needed.
        Ok(reply.judge(classify, "msg_id", false))
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
        with_token(&self.tokens, |token| self.post(token, &body)).await
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
        assert!(matches!(
            classify(-112, "", now),
            Outcome::Failed(SendError::CampaignFault { .. })
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
