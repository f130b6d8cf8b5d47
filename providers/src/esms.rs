//! eSMS.vn brandname SMS (`SendMultipleMessage_V4_post_json`): the delivery id is the `RequestId`, so
//! a resend after a crash is recognised by eSMS (code 124) and counted as already sent.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Accepted, Channel, Message, Provider, SendError, domestic_phone, http_client};

#[derive(Clone, Debug)]
pub struct EsmsSettings {
    /// `https://rest.esms.vn`
    pub base_url: String,
    pub api_key: String,
    pub secret_key: String,
    pub brandname: String,
    /// eSMS's sandbox: accepted and charged nothing, never reaches a phone.
    pub sandbox: bool,
    pub timeout: Duration,
}

pub struct EsmsProvider {
    name: String,
    url: String,
    s: EsmsSettings,
    http: reqwest::Client,
}

/// eSMS's field names, values as strings as its documentation shows them.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Body<'a> {
    api_key: &'a str,
    secret_key: &'a str,
    phone: &'a str,
    content: &'a str,
    brandname: &'a str,
    sms_type: &'a str,
    is_unicode: &'a str,
    sandbox: &'a str,
    request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    callback_url: Option<&'a str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Reply {
    code_result: Option<serde_json::Value>,
    #[serde(rename = "SMSID")]
    smsid: Option<serde_json::Value>,
    error_message: Option<String>,
}

fn as_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// eSMS result codes, classified once.
fn classify(code: &str, message: &str) -> Result<(), SendError> {
    let reason = format!("eSMS {code}: {message}");
    match code {
        "100" => Ok(()),
        // Duplicate RequestId: this delivery already went out under its id.
        "124" => Ok(()),
        // The account or the brandname cannot send at all (wrong key, no price list, no balance,
        // brandname unknown, content not matching the registered template): same for everyone.
        "101" | "102" | "103" | "104" | "146" => Err(SendError::campaign(reason)),
        // Bad phone, carrier not registered for the brandname, or anything else about this number.
        _ => Err(SendError::permanent(reason)),
    }
}

impl EsmsProvider {
    pub fn new(name: &str, s: EsmsSettings) -> Result<Self, String> {
        Ok(EsmsProvider {
            name: name.into(),
            url: format!(
                "{}/MainService.svc/json/SendMultipleMessage_V4_post_json/",
                s.base_url.trim_end_matches('/')
            ),
            http: http_client(s.timeout)?,
            s,
        })
    }
}

#[async_trait::async_trait]
impl Provider for EsmsProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn channel(&self) -> Channel {
        Channel::Sms
    }

    async fn send(&self, msg: &Message) -> Result<Accepted, SendError> {
        let phone = domestic_phone(&msg.to);
        let body = Body {
            api_key: &self.s.api_key,
            secret_key: &self.s.secret_key,
            phone: &phone,
            content: &msg.text,
            brandname: &self.s.brandname,
            sms_type: "2",
            is_unicode: if msg.sms.is_some_and(|s| s.ucs2) {
                "1"
            } else {
                "0"
            },
            sandbox: if self.s.sandbox { "1" } else { "0" },
            request_id: &msg.id,
            callback_url: msg.callback_url.as_deref(),
        };
        let resp = self
            .http
            .post(&self.url)
            .json(&body)
            .send()
            .await
            .map_err(|e| crate::unreachable("eSMS", e))?;
        if let Some(e) = crate::throttled("eSMS", &resp) {
            return Err(e);
        }
        let status = resp.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(SendError::transient(format!("eSMS answered HTTP {status}")));
        }
        let reply: Reply = resp.json().await.map_err(|e| {
            SendError::transient(format!("eSMS answered HTTP {status}, unreadable: {e}"))
        })?;
        let code = reply.code_result.as_ref().map(as_text).unwrap_or_default();
        classify(&code, reply.error_message.as_deref().unwrap_or(""))?;
        // Receipts come back to the signed callback URL with our RequestId.
        Ok(Accepted {
            provider_message_id: reply.smsid.as_ref().map(as_text),
            ..Accepted::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified() {
        assert!(classify("100", "").is_ok());
        assert!(
            classify("124", "").is_ok(),
            "duplicate RequestId = already sent"
        );
        assert!(matches!(
            classify("103", ""),
            Err(SendError::CampaignFault { .. })
        ));
        assert!(matches!(
            classify("146", ""),
            Err(SendError::CampaignFault { .. })
        ));
        assert!(matches!(
            classify("108", ""),
            Err(SendError::Permanent { .. })
        ));
    }
}
