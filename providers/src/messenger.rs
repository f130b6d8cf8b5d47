//! Facebook Messenger Send API: a tagged text message to a Page-scoped id (PSID), with the Graph
//! version pinned in config and every documented error code classified.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use crate::{Accepted, Channel, Message, Provider, SendError, http_client};

/// Used when a campaign chose none: reminders of classes and events fit most school messages.
pub const DEFAULT_TAG: &str = "CONFIRMED_EVENT_UPDATE";
/// Tags Facebook allows outside the 24-hour window for non-promotional messages.
pub const TAGS: &[&str] = &[
    "CONFIRMED_EVENT_UPDATE",
    "ACCOUNT_UPDATE",
    "POST_PURCHASE_UPDATE",
    "HUMAN_AGENT",
];

#[derive(Clone, Debug)]
pub struct MessengerSettings {
    /// `https://graph.facebook.com`
    pub base_url: String,
    /// `v25.0`
    pub graph_version: String,
    pub page_token: String,
    pub timeout: Duration,
}

pub struct MessengerProvider {
    name: String,
    url: String,
    page_token: String,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct Reply {
    message_id: Option<String>,
    error: Option<GraphError>,
}

#[derive(Deserialize)]
struct GraphError {
    message: Option<String>,
    code: Option<i64>,
    error_subcode: Option<i64>,
}

/// Graph error codes, classified once.
fn classify(code: i64, subcode: i64, message: &str) -> SendError {
    let reason = format!("Messenger {code}/{subcode}: {message}");
    match (code, subcode) {
        // Page or app over its rate.
        (613 | 4 | 17 | 32, _) => SendError::RateLimited {
            reason,
            retry_after: Some(Duration::from_secs(10)),
        },
        (2 | 1200, _) => SendError::transient(reason),
        // The page token is invalid or expired: every send would fail until an operator replaces it.
        (190, _) => SendError::campaign(reason),
        // Outside the allowed window, person unavailable, no such person: this person only.
        _ => SendError::permanent(reason),
    }
}

impl MessengerProvider {
    pub fn new(name: &str, s: MessengerSettings) -> Result<Self, String> {
        Ok(MessengerProvider {
            name: name.into(),
            url: format!(
                "{}/{}/me/messages",
                s.base_url.trim_end_matches('/'),
                s.graph_version.trim_matches('/')
            ),
            page_token: s.page_token,
            http: http_client(s.timeout)?,
        })
    }
}

#[async_trait::async_trait]
impl Provider for MessengerProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn channel(&self) -> Channel {
        Channel::Messenger
    }

    async fn send(&self, msg: &Message) -> Result<Accepted, SendError> {
        // Loa's messages are not answers to the person, so they always travel tagged: a tag is valid
        // inside the 24-hour window as well as outside it.
        let body = json!({
            "recipient": {"id": msg.to},
            "messaging_type": "MESSAGE_TAG",
            "tag": msg.messenger_tag.as_deref().unwrap_or(DEFAULT_TAG),
            "message": {"text": msg.text},
        });
        let resp = self
            .http
            .post(&self.url)
            .query(&[("access_token", &self.page_token)])
            .json(&body)
            .send()
            .await
            .map_err(|e| crate::unreachable("Messenger", e))?;
        if let Some(e) = crate::throttled("Messenger", &resp) {
            return Err(e);
        }
        let status = resp.status();
        if status.is_server_error() {
            return Err(SendError::transient(format!(
                "Messenger answered HTTP {status}"
            )));
        }
        let reply: Reply = resp.json().await.map_err(|e| {
            SendError::transient(format!(
                "Messenger answered HTTP {status}, unreadable: {}",
                e.without_url()
            ))
        })?;
        if let Some(e) = reply.error {
            return Err(classify(
                e.code.unwrap_or(0),
                e.error_subcode.unwrap_or(0),
                e.message.as_deref().unwrap_or(""),
            ));
        }
        if !status.is_success() || reply.message_id.is_none() {
            return Err(SendError::transient(format!(
                "Messenger answered HTTP {status} without a message id"
            )));
        }
        // Delivery receipts name messages by mid (or by a watermark over the person's messages).
        Ok(Accepted {
            provider_message_id: reply.message_id,
            delivered: false,
            receipt_by_provider_id: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified() {
        assert!(matches!(
            classify(613, 0, ""),
            SendError::RateLimited { .. }
        ));
        assert!(matches!(
            classify(10, 2018278, ""),
            SendError::Permanent { .. }
        ));
        assert!(matches!(
            classify(551, 1545041, ""),
            SendError::Permanent { .. }
        ));
        assert!(matches!(
            classify(190, 0, ""),
            SendError::CampaignFault { .. }
        ));
        assert!(matches!(classify(2, 0, ""), SendError::Transient { .. }));
    }
}
