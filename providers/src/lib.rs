//! Loa's delivery providers: the one `Provider` trait every channel adapter implements, the message it
//! takes, and the classified error it returns (the dispatcher alone decides what to do with the class).

pub mod email;
pub mod esms;
pub mod http_sms;
pub mod kannel;
pub mod messenger;
pub mod sink;
pub mod speedsms;
pub mod zalo;

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A way of reaching a person. The order of a campaign's channels is its order of preference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Sms,
    /// Zalo Official Account messages, to a follower's user id.
    Zalo,
    Messenger,
    /// Zalo ZNS template messages, to a phone number (no need to follow the OA).
    ZaloZns,
}

impl Channel {
    pub const ALL: [Channel; 5] = [
        Channel::Email,
        Channel::Sms,
        Channel::Zalo,
        Channel::Messenger,
        Channel::ZaloZns,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Zalo => "zalo",
            Channel::Messenger => "messenger",
            Channel::ZaloZns => "zalo_zns",
        }
    }

    pub fn parse(s: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// One bit per channel, used for opt-out masks. A parent who stops Zalo stops it whichever way
    /// it comes, so both Zalo channels share one bit.
    pub fn bit(self) -> i64 {
        match self {
            Channel::ZaloZns => Channel::Zalo.bit(),
            c => 1 << (c as i64),
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an SMS body will travel: the adapter needs the coding, Loa stores the segment count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SmsShape {
    pub ucs2: bool,
    pub segments: u32,
}

/// Links a recipient can use to stop this channel (RFC 8058 one-click for email).
#[derive(Clone, Debug, Serialize)]
pub struct Unsubscribe {
    pub url: String,
    pub mailto: Option<String>,
}

/// A ZNS template message: Zalo's template id and its parameters, filled for one person.
#[derive(Clone, Debug, Serialize)]
pub struct ZnsData {
    pub template_id: String,
    pub data: std::collections::BTreeMap<String, String>,
}

/// A Zalo OA transaction message (`template_type` `transaction_education`), rendered for one person:
/// a header, the message text, a key/value table and an optional link button.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ZaloTransaction {
    pub header: String,
    pub table: Vec<(String, String)>,
    /// (title, https URL)
    pub button: Option<(String, String)>,
}

/// One rendered message for one person on one channel.
#[derive(Clone, Debug, Serialize)]
pub struct Message {
    /// The delivery id: the idempotency key wherever a provider accepts one.
    pub id: String,
    pub channel: Channel,
    /// Address on the channel: E.164 phone, email address, Zalo user id or Messenger PSID.
    pub to: String,
    pub subject: Option<String>,
    pub text: String,
    pub html: Option<String>,
    pub sms: Option<SmsShape>,
    pub unsubscribe: Option<Unsubscribe>,
    /// Where the provider should report delivery (Kannel dlr-url), already signed by Loa.
    pub callback_url: Option<String>,
    /// ZNS only: the template and its filled parameters.
    pub zns: Option<ZnsData>,
    /// Zalo OA only: send as a transaction message instead of a consultation text.
    pub zalo_transaction: Option<ZaloTransaction>,
    /// Messenger only: the message tag the campaign chose (`CONFIRMED_EVENT_UPDATE` when absent).
    pub messenger_tag: Option<String>,
}

impl Message {
    /// A plain text message; the channel-specific parts are added where they apply.
    pub fn new(id: String, channel: Channel, to: String, text: String) -> Message {
        Message {
            id,
            channel,
            to,
            subject: None,
            text,
            html: None,
            sms: None,
            unsubscribe: None,
            callback_url: None,
            zns: None,
            zalo_transaction: None,
            messenger_tag: None,
        }
    }
}

/// The provider took the message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accepted {
    pub provider_message_id: Option<String>,
    /// True when acceptance already means the person has it (local sinks); otherwise a receipt follows.
    pub delivered: bool,
    /// Receipts will name the message only by `provider_message_id` (Zalo OA, Messenger, SpeedSMS),
    /// so Loa must be able to look the delivery up by it.
    pub receipt_by_provider_id: bool,
}

/// A failure, classified once by the adapter that saw it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth retrying later (network error, 4xx SMTP, 5xx HTTP).
    #[error("transient: {reason}")]
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// The provider asks us to slow down; not the recipient's fault.
    #[error("rate limited: {reason}")]
    RateLimited {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Will never succeed for this person on this channel.
    #[error("permanent: {reason}")]
    Permanent { reason: String },
    /// Will fail the same way for everyone this campaign sends on this channel (template refused,
    /// wrong key, no balance, brandname inactive): the channel is paused for the campaign instead of
    /// failing its people one by one.
    #[error("campaign-wide: {reason}")]
    CampaignFault { reason: String },
}

impl SendError {
    pub fn transient(reason: impl Into<String>) -> Self {
        SendError::Transient {
            reason: reason.into(),
            retry_after: None,
        }
    }
    pub fn permanent(reason: impl Into<String>) -> Self {
        SendError::Permanent {
            reason: reason.into(),
        }
    }
    pub fn campaign(reason: impl Into<String>) -> Self {
        SendError::CampaignFault {
            reason: reason.into(),
        }
    }

    /// The same error with the addresses in its reason masked (see `mask_personal`).
    pub fn masked(self, known: &[&str]) -> Self {
        match self {
            SendError::Transient {
                reason,
                retry_after,
            } => SendError::Transient {
                reason: mask_personal(&reason, known),
                retry_after,
            },
            SendError::RateLimited {
                reason,
                retry_after,
            } => SendError::RateLimited {
                reason: mask_personal(&reason, known),
                retry_after,
            },
            SendError::Permanent { reason } => SendError::Permanent {
                reason: mask_personal(&reason, known),
            },
            SendError::CampaignFault { reason } => SendError::CampaignFault {
                reason: mask_personal(&reason, known),
            },
        }
    }
}

/// A channel adapter. Implementations classify every error they can see; they never retry themselves.
#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    fn name(&self) -> &str;
    fn channel(&self) -> Channel;
    async fn send(&self, msg: &Message) -> Result<Accepted, SendError>;
}

/// A stored E.164 number as gateways want it on the wire: `+84912345678` -> `84912345678`.
pub fn wire_phone(e164: &str) -> &str {
    e164.strip_prefix('+').unwrap_or(e164)
}

/// A stored E.164 Vietnamese number in the domestic form some gateways want: `+84912345678` ->
/// `0912345678`. Other countries' numbers stay international.
pub fn domestic_phone(e164: &str) -> String {
    match e164.strip_prefix("+84") {
        Some(rest) => format!("0{rest}"),
        None => wire_phone(e164).to_string(),
    }
}

/// The HTTP client every HTTP adapter uses: one per adapter, with the configured timeout.
pub(crate) fn http_client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| format!("cannot build HTTP client: {e}"))
}

/// The longest wait a provider's Retry-After may impose (a used-up daily quota waits until midnight;
/// anything longer is a broken or hostile answer).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// How long to wait after a 429 that names no time.
pub const DEFAULT_429_WAIT: Duration = Duration::from_secs(1);

/// Reads a `Retry-After` value: delay-seconds or an HTTP date (RFC 9110 section 10.2.3), relative to
/// `now`, capped at `MAX_RETRY_AFTER`. None when it is neither.
pub fn parse_retry_after(v: &str, now: std::time::SystemTime) -> Option<Duration> {
    let v = v.trim();
    let wait = if let Ok(secs) = v.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = httpdate::parse_http_date(v).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// An HTTP answer that means "not now, and not this person's fault": 429 always, 503 when it says
/// when to come back. The channel then waits that long for everyone and no attempt is spent.
pub(crate) fn throttled(what: &str, resp: &reqwest::Response) -> Option<SendError> {
    let status = resp.status().as_u16();
    let after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
    match (status, after) {
        (429, after) => Some(SendError::RateLimited {
            reason: format!("{what} answered HTTP 429 (too many requests)"),
            retry_after: Some(after.unwrap_or(DEFAULT_429_WAIT)),
        }),
        (503, Some(after)) => Some(SendError::RateLimited {
            reason: format!(
                "{what} answered HTTP 503, retry after {} s",
                after.as_secs()
            ),
            retry_after: Some(after),
        }),
        _ => None,
    }
}

/// A request that got no answer, with why in words an operator can act on: a timeout, a refused
/// connection and one dropped mid-answer are different troubles. The URL is left out (it may carry
/// a token).
pub(crate) fn unreachable(what: &str, e: reqwest::Error) -> SendError {
    let e = e.without_url();
    let kind = if e.is_timeout() {
        "did not answer in time"
    } else if e.is_connect() {
        "could not be connected to"
    } else if e.is_body() || e.is_decode() {
        "sent an unreadable answer"
    } else {
        "dropped the connection before answering"
    };
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    let detail: String = detail.chars().take(300).collect();
    SendError::transient(format!("{what} {kind} ({detail})"))
}

/// Masks an address for logs: `+8490****567`, `ng***@example.vn`.
pub fn mask_address(addr: &str) -> String {
    if let Some((user, domain)) = addr.split_once('@') {
        let keep: String = user.chars().take(2).collect();
        return format!("{keep}***@{domain}");
    }
    let chars: Vec<char> = addr.chars().collect();
    if chars.len() <= 7 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..5].iter().collect();
    let tail: String = chars[chars.len() - 3..].iter().collect();
    format!("{head}****{tail}")
}

/// A provider's text with every address in it masked as `mask_address` does, for what is stored and
/// logged: the person's `known` ids (phone in its E.164, wire and domestic forms, email, Zalo id,
/// PSID) wherever they appear, any other email, and any run of 8 or more digits (a phone number or
/// an id in whatever form the provider quoted it). Providers quote the recipient ("Invalid
/// destination number 84986669999"); the last 3 digits are kept, enough to tell people apart.
pub fn mask_personal(text: &str, known: &[&str]) -> String {
    let mut forms: Vec<String> = Vec::new();
    for k in known
        .iter()
        .map(|k| k.trim())
        .filter(|k| k.chars().count() >= 4)
    {
        forms.push(k.to_string());
        if k.starts_with('+') {
            forms.push(wire_phone(k).to_string());
            forms.push(domestic_phone(k));
        }
    }
    // Longest first, so that a form inside another is not masked half-way.
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    let mut out = text.to_string();
    for f in &forms {
        if out.contains(f.as_str()) {
            out = out.replace(f.as_str(), &mask_address(f));
        }
    }
    mask_digit_runs(&mask_emails(&out))
}

/// Every email address in `text` masked as `mask_address` does.
pub fn mask_emails(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.contains('@') {
            out.push_str(&mask_address(word));
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_whitespace() || "<>()[],;:\"'".contains(c) {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Runs of 8 or more digits (with a leading `+` if any) masked as `mask_address` does.
fn mask_digit_runs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.chars().filter(char::is_ascii_digit).count() >= 8 {
            out.push_str(&mask_address(run));
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() || (c == '+' && run.is_empty()) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_addresses_in_provider_texts() {
        assert_eq!(
            mask_personal("Invalid destination number 84986669999", &[]),
            "Invalid destination number 84986****999"
        );
        let known = ["+84986669999", "lan@example.vn", "zl-user-7"];
        let masked = mask_personal(
            "0986669999 and +84986669999 and lan@example.vn and user zl-user-7, error 4011",
            &known,
        );
        assert!(!masked.contains("86669"), "{masked}");
        assert!(!masked.contains("lan@"), "{masked}");
        assert!(!masked.contains("zl-user-7"), "{masked}");
        assert!(
            masked.contains("999") && masked.contains("error 4011"),
            "{masked}"
        );
        // Masking twice changes nothing more.
        assert_eq!(mask_personal(&masked, &known), masked);
        assert_eq!(mask_personal("busy (code 503)", &[]), "busy (code 503)");
    }

    #[test]
    fn masks_phone_and_email() {
        assert_eq!(mask_address("+84901234567"), "+8490****567");
        assert_eq!(mask_address("nguyen.lan@example.vn"), "ng***@example.vn");
        assert_eq!(mask_address("12345"), "*****");
    }

    #[test]
    fn wire_phone_drops_plus() {
        assert_eq!(wire_phone("+84912345678"), "84912345678");
        assert_eq!(wire_phone("84912345678"), "84912345678");
        assert_eq!(domestic_phone("+84912345678"), "0912345678");
        assert_eq!(domestic_phone("+6591234567"), "6591234567");
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // 2015-10-21 07:28:00 UTC
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:30:00 GMT", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(parse_retry_after("99999999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn channel_round_trips() {
        for c in Channel::ALL {
            assert_eq!(Channel::parse(c.as_str()), Some(c));
        }
        assert_eq!(Channel::parse("fax"), None);
    }
}
