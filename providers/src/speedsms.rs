//! SpeedSMS (`/index.php/sms/send`): HTTP Basic with the API token as user and `x` as password; one
//! number per request so the returned `tranId` names exactly one delivery for later reports.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use crate::{Accepted, Channel, Message, Provider, SendError, http_client, wire_phone};

#[derive(Clone, Debug)]
pub struct SpeedSmsSettings {
    /// `https://api.speedsms.vn`
    pub base_url: String,
    pub token: String,
    /// 2 customer care, 3 brandname, 4 default brandname (SpeedSMS's own sender name).
    pub sms_type: u8,
    pub sender: Option<String>,
    pub timeout: Duration,
}

pub struct SpeedSmsProvider {
    name: String,
    url: String,
    s: SpeedSmsSettings,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct Reply {
    status: Option<String>,
    code: Option<serde_json::Value>,
    message: Option<String>,
    data: Option<ReplyData>,
}

#[derive(Deserialize)]
struct ReplyData {
    #[serde(rename = "tranId")]
    tran_id: Option<serde_json::Value>,
    #[serde(rename = "invalidPhone", default)]
    invalid_phone: Vec<serde_json::Value>,
}

fn as_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// SpeedSMS error codes, classified once.
fn classify(code: &str, message: &str) -> SendError {
    let reason = format!("SpeedSMS {code}: {message}");
    match code {
        // 007 IP locked, 008 account blocked, 009 account not allowed to use the API, 101 request
        // malformed, 110 encoding not supported, 300 balance too low: same for every message.
        "007" | "008" | "009" | "101" | "110" | "300" => SendError::campaign(reason),
        "500" => SendError::transient(reason),
        // 105 phone invalid, 113 too long for this number's carrier, and anything unknown.
        _ => SendError::permanent(reason),
    }
}

impl SpeedSmsProvider {
    pub fn new(name: &str, s: SpeedSmsSettings) -> Result<Self, String> {
        Ok(SpeedSmsProvider {
            name: name.into(),
            url: format!("{}/index.php/sms/send", s.base_url.trim_end_matches('/')),
            http: http_client(s.timeout)?,
            s,
        })
    }
}

#[async_trait::async_trait]
impl Provider for SpeedSmsProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn channel(&self) -> Channel {
        Channel::Sms
    }

    async fn send(&self, msg: &Message) -> Result<Accepted, SendError> {
        let mut body = json!({
            "to": [wire_phone(&msg.to)],
            "content": msg.text,
            "sms_type": self.s.sms_type,
        });
        if let Some(sender) = &self.s.sender {
            body["sender"] = json!(sender);
        }
        let resp = self
            .http
            .post(&self.url)
            .basic_auth(&self.s.token, Some("x"))
            .json(&body)
            .send()
            .await
            .map_err(|e| crate::unreachable("SpeedSMS", e))?;
        if let Some(e) = crate::throttled("SpeedSMS", &resp) {
            return Err(e);
        }
        let status = resp.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(SendError::transient(format!(
                "SpeedSMS answered HTTP {status}"
            )));
        }
        if status.as_u16() == 401 || status.as_u16() == 403 {
            return Err(SendError::campaign(format!(
                "SpeedSMS refused the API token (HTTP {status})"
            )));
        }
        let reply: Reply = resp.json().await.map_err(|e| {
            SendError::transient(format!("SpeedSMS answered HTTP {status}, unreadable: {e}"))
        })?;
        if reply.status.as_deref() != Some("success") {
            let code = reply.code.as_ref().map(as_text).unwrap_or_default();
            return Err(classify(&code, reply.message.as_deref().unwrap_or("")));
        }
        let data = reply
            .data
            .ok_or_else(|| SendError::transient("SpeedSMS answered success without data"))?;
        if !data.invalid_phone.is_empty() {
            return Err(SendError::permanent("SpeedSMS: invalid phone number"));
        }
        Ok(Accepted {
            provider_message_id: data.tran_id.as_ref().map(as_text),
            delivered: false,
            // Its delivery reports name the transaction id only.
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
            classify("300", ""),
            SendError::CampaignFault { .. }
        ));
        assert!(matches!(classify("105", ""), SendError::Permanent { .. }));
        assert!(matches!(classify("500", ""), SendError::Transient { .. }));
    }
}
