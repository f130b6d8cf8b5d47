//! Zalo Official Account messages to a follower's user id: consultation text (`/v3.0/oa/message/cs`)
//! or, when the template asks for it, a `transaction_education` message (`/v3.0/oa/message/transaction`).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::token::TokenManager;
use super::{Outcome, until_next_vn_midnight, with_token};
use crate::{Accepted, Channel, Message, Provider, SendError, ZaloTransaction, http_client};

#[derive(Clone, Debug)]
pub struct OaSettings {
    /// `https://openapi.zalo.me`
    pub base_url: String,
    pub timeout: Duration,
}

pub struct OaProvider {
    name: String,
    cs_url: String,
    transaction_url: String,
    http: reqwest::Client,
    tokens: Arc<TokenManager>,
}

/// OA codes, classified once. Zalo documents few of them publicly; those seen in production clients
/// are mapped, and anything unknown counts against the person (who falls back), never the campaign.
fn classify(code: i64, message: &str, now: SystemTime) -> Outcome {
    let reason = format!("Zalo OA {code}: {message}");
    match code {
        -216 | -124 => Outcome::TokenInvalid,
        -32 => Outcome::Failed(SendError::RateLimited {
            reason,
            retry_after: Some(Duration::from_secs(1)),
        }),
        // The OA's monthly/daily message quota: nothing more goes today.
        -211 => Outcome::Failed(SendError::RateLimited {
            reason,
            retry_after: Some(until_next_vn_midnight(now)),
        }),
        // The OA itself cannot send (deleted, missing, app not linked to it): same for everyone.
        -204 | -205 | -209 => Outcome::Failed(SendError::campaign(reason)),
        // -213/-230: the person has not interacted recently (no consultation message allowed); -201:
        // not a follower or bad user id; -217: blocked the OA. All permanent for this person here.
        _ => Outcome::Failed(SendError::permanent(reason)),
    }
}

/// The `transaction_education` attachment, element by element as Zalo documents it.
fn transaction_body(user_id: &str, text: &str, t: &ZaloTransaction) -> Value {
    let mut elements = vec![
        json!({"type": "header", "content": t.header, "align": "left"}),
        json!({"type": "text", "content": text, "align": "left"}),
    ];
    if !t.table.is_empty() {
        let rows: Vec<Value> = t
            .table
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        elements.push(json!({"type": "table", "content": rows}));
    }
    let buttons: Vec<Value> = t
        .button
        .iter()
        .map(|(title, url)| json!({"title": title, "type": "oa.open.url", "payload": {"url": url}}))
        .collect();
    json!({
        "recipient": {"user_id": user_id},
        "message": {"attachment": {"type": "template", "payload": {
            "template_type": "transaction_education",
            "language": "VI",
            "elements": elements,
            "buttons": buttons,
        }}}
    })
}

impl OaProvider {
    pub fn new(
        name: &str,
        settings: OaSettings,
        tokens: Arc<TokenManager>,
    ) -> Result<Self, String> {
        let base = settings.base_url.trim_end_matches('/');
        Ok(OaProvider {
            name: name.into(),
            cs_url: format!("{base}/v3.0/oa/message/cs"),
            transaction_url: format!("{base}/v3.0/oa/message/transaction"),
            http: http_client(settings.timeout)?,
            tokens,
        })
    }

    async fn post(
        &self,
        url: &str,
        token: String,
        body: &Value,
    ) -> Result<Result<Accepted, Outcome>, SendError> {
        let reply = super::post(&self.http, url, &token, body, "Zalo OA").await?;
        // OA receipts name the message only by Zalo's message_id.
        Ok(reply.judge(classify, "message_id", true))
    }
}

#[async_trait::async_trait]
impl Provider for OaProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn channel(&self) -> Channel {
        Channel::Zalo
    }

    async fn send(&self, msg: &Message) -> Result<Accepted, SendError> {
        let (url, body) = match &msg.zalo_transaction {
            Some(t) => (
                &self.transaction_url,
                transaction_body(&msg.to, &msg.text, t),
            ),
            None => (
                &self.cs_url,
                json!({"recipient": {"user_id": msg.to}, "message": {"text": msg.text}}),
            ),
        };
        with_token(&self.tokens, |token| self.post(url, token, &body)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified() {
        let now = SystemTime::now();
        assert_eq!(classify(-216, "", now), Outcome::TokenInvalid);
        assert!(matches!(
            classify(-230, "", now),
            Outcome::Failed(SendError::Permanent { .. })
        ));
        assert!(matches!(
            classify(-209, "", now),
            Outcome::Failed(SendError::CampaignFault { .. })
        ));
    }

    #[test]
    fn transaction_has_the_documented_shape() {
        let t = ZaloTransaction {
            header: "Thông báo".into(),
            table: vec![("Học sinh".into(), "An".into())],
            button: Some(("Xem".into(), "https://truong.edu.vn".into())),
        };
        let b = transaction_body("123", "Nội dung", &t);
        let p = &b["message"]["attachment"]["payload"];
        assert_eq!(p["template_type"], "transaction_education");
        assert_eq!(p["elements"][0]["type"], "header");
        assert_eq!(p["elements"][2]["content"][0]["key"], "Học sinh");
        assert_eq!(p["buttons"][0]["type"], "oa.open.url");
        assert_eq!(b["recipient"]["user_id"], "123");
    }
}
