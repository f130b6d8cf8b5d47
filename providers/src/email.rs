//! Email over SMTP with lettre's async pooled transport: UTF-8 subject and body, RFC 8058 one-click
//! List-Unsubscribe headers, the delivery id as Message-ID, SMTP replies classified 4xx/5xx.

use std::time::Duration;

use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::Deserialize;

use crate::{Accepted, Channel, Message, Provider, SendError};

/// How the SMTP connection is secured.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain connection, upgraded with STARTTLS (required).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on loopback or in tests.
    None,
}

#[derive(Clone, Debug)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: Option<String>,
    pub password: Option<String>,
    /// `"Trường TH Mỹ Phú <no-reply@myphu.edu.vn>"`.
    pub from: String,
    pub pool_size: u32,
    pub timeout: Duration,
}

pub struct SmtpProvider {
    name: String,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpProvider {
    pub fn new(name: &str, s: &SmtpSettings) -> Result<Self, String> {
        let from: Mailbox = s
            .from
            .parse()
            .map_err(|e| format!("invalid from address {:?}: {e}", s.from))?;
        let builder = match s.tls {
            TlsMode::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&s.host)
                .map_err(|e| format!("smtp {}: {e}", s.host))?,
            TlsMode::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&s.host)
                .map_err(|e| format!("smtp {}: {e}", s.host))?,
            TlsMode::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host),
        };
        let mut builder = builder
            .port(s.port)
            .timeout(Some(s.timeout))
            .pool_config(PoolConfig::new().max_size(s.pool_size.max(1)));
        if let (Some(user), Some(pass)) = (&s.username, &s.password) {
            builder = builder.credentials(Credentials::new(user.clone(), pass.clone()));
        }
        Ok(SmtpProvider {
            name: name.to_string(),
            transport: builder.build(),
            from,
        })
    }
}

#[async_trait::async_trait]
impl Provider for SmtpProvider {
    fn name(&self) -> &str {
        &self.name
    }
    fn channel(&self) -> Channel {
        Channel::Email
    }
    async fn send(&self, msg: &Message) -> Result<Accepted, SendError> {
        let email = build_email(msg, &self.from)?;
        match self.transport.send(email).await {
            Ok(resp) => Ok(Accepted {
                provider_message_id: resp.message().next().map(|l| l.to_string()),
                ..Accepted::default()
            }),
            Err(e) => Err(classify_smtp(&e)),
        }
    }
}

/// 5xx is the server's final word about this recipient; anything else (4xx, timeouts, lost connections,
/// TLS trouble) may pass on a later attempt.
fn classify_smtp(e: &lettre::transport::smtp::Error) -> SendError {
    if e.is_permanent() {
        SendError::permanent(format!("smtp: {e}"))
    } else {
        SendError::transient(format!("smtp: {e}"))
    }
}

/// The domain part of the sender, used to make the Message-ID globally unique.
fn sender_domain(from: &Mailbox) -> &str {
    from.email.domain()
}

/// Builds the RFC 5322 message. Shared by the SMTP provider and the `.eml` sink so that what the demo
/// writes is exactly what SMTP would carry.
pub fn build_email(msg: &Message, from: &Mailbox) -> Result<lettre::Message, SendError> {
    let to: Mailbox = msg
        .to
        .parse()
        .map_err(|e| SendError::permanent(format!("invalid email address: {e}")))?;
    let mut builder = lettre::Message::builder()
        .from(from.clone())
        .to(to)
        .subject(msg.subject.clone().unwrap_or_default())
        .message_id(Some(format!("<{}@{}>", msg.id, sender_domain(from))));
    if let Some(u) = &msg.unsubscribe {
        let value = match &u.mailto {
            Some(m) => format!("<{}>, <mailto:{}>", u.url, m),
            None => format!("<{}>", u.url),
        };
        builder = builder
            .header(ListUnsubscribe(value))
            .header(ListUnsubscribePost("List-Unsubscribe=One-Click".into()));
    }
    let built = match &msg.html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(
            msg.text.clone(),
            html.clone(),
        )),
        None => builder
            .header(ContentType::TEXT_PLAIN)
            .body(msg.text.clone()),
    };
    built.map_err(|e| SendError::permanent(format!("cannot build email: {e}")))
}

/// `List-Unsubscribe` (RFC 2369); lettre has no typed header for it.
#[derive(Clone, Debug)]
struct ListUnsubscribe(String);

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribe(s.to_string()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// `List-Unsubscribe-Post` (RFC 8058 one-click).
#[derive(Clone, Debug)]
struct ListUnsubscribePost(String);

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribePost(s.to_string()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Unsubscribe;

    fn message() -> Message {
        Message {
            subject: Some("Mẹo an toàn trên mạng tuần này".into()),
            unsubscribe: Some(Unsubscribe {
                url: "http://127.0.0.1:8080/u/abc?c=email".into(),
                mailto: Some("unsubscribe@myphu.edu.vn".into()),
            }),
            ..Message::new(
                "42".into(),
                Channel::Email,
                "phuhuynh@example.vn".into(),
                "Kính gửi phụ huynh em Nguyễn Văn An".into(),
            )
        }
    }

    #[test]
    fn email_carries_message_id_and_one_click_headers() {
        let from: Mailbox = "Trường TH Mỹ Phú <no-reply@myphu.edu.vn>".parse().unwrap();
        let raw = String::from_utf8(build_email(&message(), &from).unwrap().formatted()).unwrap();
        // Long headers are folded (RFC 5322); compare them unfolded.
        let raw = raw.replace("\r\n ", " ");
        assert!(raw.contains("Message-ID: <42@myphu.edu.vn>"), "{raw}");
        assert!(raw.contains("List-Unsubscribe: <http://127.0.0.1:8080/u/abc?c=email>, <mailto:unsubscribe@myphu.edu.vn>"), "{raw}");
        assert!(
            raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
            "{raw}"
        );
        // The UTF-8 subject must be RFC 2047 encoded, never raw 8-bit in a header.
        assert!(raw.contains("Subject: =?utf-8?"), "{raw}");
    }

    #[test]
    fn bad_address_is_permanent() {
        let from: Mailbox = "a@b.vn".parse().unwrap();
        let mut m = message();
        m.to = "not an address".into();
        assert!(matches!(
            build_email(&m, &from),
            Err(SendError::Permanent { .. })
        ));
    }
}
