//! SMS through Kannel's smsbox HTTP interface (`/cgi-bin/sendsms`), asking for delivery reports
//! at Loa's signed callback URL.

use std::time::Duration;

use crate::{Accepted, Channel, Message, Provider, SendError, http_client, wire_phone};

#[derive(Clone, Debug)]
pub struct KannelSettings {
    /// `http://127.0.0.1:13013`
    pub base_url: String,
    pub username: String,
    pub password: String,
    /// Sender (brandname or short code); Kannel's global-sender is used when absent.
    pub from: Option<String>,
    /// Kannel's `smsc` routing parameter, when the gateway has several.
    pub smsc: Option<String>,
    pub timeout: Duration,
}

pub struct KannelProvider {
    name: String,
    settings: KannelSettings,
    http: reqwest::Client,
}

/// Every report type: 1 delivered to phone, 2 not delivered, 4 queued on SMSC, 8 delivered to SMSC,
/// 16 rejected by SMSC.
const DLR_MASK: &str = "31";

impl KannelProvider {
    pub fn new(name: &str, settings: KannelSettings) -> Result<Self, String> {
        Ok(KannelProvider {
            name: name.to_string(),
            http: http_client(settings.timeout)?,
            settings,
        })
    }
}

#[async_trait::async_trait]
impl Provider for KannelProvider {
    fn name(&self) -> &str {
        &self.name
    }
    fn channel(&self) -> Channel {
        Channel::Sms
    }
    async fn send(&self, msg: &Message) -> Result<Accepted, SendError> {
        let s = &self.settings;
        let ucs2 = msg.sms.map(|m| m.ucs2).unwrap_or(false);
        let mut query: Vec<(&str, String)> = vec![
            ("username", s.username.clone()),
            ("password", s.password.clone()),
            ("to", wire_phone(&msg.to).to_string()),
            ("text", msg.text.clone()),
            ("charset", "UTF-8".into()),
            ("coding", if ucs2 { "2" } else { "0" }.into()),
        ];
        if let Some(from) = &s.from {
            query.push(("from", from.clone()));
        }
        if let Some(smsc) = &s.smsc {
            query.push(("smsc", smsc.clone()));
        }
        if let Some(cb) = &msg.callback_url {
            // %d is Kannel's escape for the report type, %A for the SMSC's reply text.
            let sep = if cb.contains('?') { '&' } else { '?' };
            query.push(("dlr-mask", DLR_MASK.into()));
            query.push(("dlr-url", format!("{cb}{sep}type=%d&reply=%A")));
        }
        let url = format!("{}/cgi-bin/sendsms", s.base_url.trim_end_matches('/'));
        let resp = self
            .http
            .get(&url)
            .query(&query)
            .send()
            .await
            .map_err(|e| crate::unreachable("kannel", e))?;
        if let Some(e) = crate::throttled("kannel", &resp) {
            return Err(e);
        }
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        classify(status.as_u16(), body.trim())
    }
}

/// Kannel answers 202 `0: Accepted for delivery` or `3: Queued for later delivery`; 4xx means the
/// request itself is wrong (bad credentials, missing field) and 503 means try again later.
fn classify(status: u16, body: &str) -> Result<Accepted, SendError> {
    match status {
        200..=299 if body.starts_with("0:") || body.starts_with("3:") => Ok(Accepted::default()),
        200..=299 => Err(SendError::transient(format!(
            "kannel: unexpected reply {status} {body:?}"
        ))),
        400..=499 => Err(SendError::permanent(format!(
            "kannel refused ({status}): {body}"
        ))),
        _ => Err(SendError::transient(format!(
            "kannel unavailable ({status}): {body}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_kannel_replies() {
        assert!(classify(202, "0: Accepted for delivery").is_ok());
        assert!(classify(202, "3: Queued for later delivery").is_ok());
        assert!(matches!(
            classify(403, "Authorization failed for sendsms"),
            Err(SendError::Permanent { .. })
        ));
        assert!(matches!(
            classify(400, "Missing receiver number"),
            Err(SendError::Permanent { .. })
        ));
        assert!(matches!(
            classify(503, "Temporal failure"),
            Err(SendError::Transient { .. })
        ));
        assert!(matches!(
            classify(202, "garbage"),
            Err(SendError::Transient { .. })
        ));
    }
}
