//! A delivery is one person in one run of a campaign: its state machine and the reasons a delivery can
//! end without reaching the person.

use super::contact::{Addresses, OptOuts};
use super::{Channel, Millis};

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    Queued,
    Sending,
    Retrying,
    Sent,
    Delivered,
    Read,
    Failed,
    Skipped,
    Cancelled,
}

impl DeliveryState {
    pub const ALL: [DeliveryState; 9] = [
        DeliveryState::Queued,
        DeliveryState::Sending,
        DeliveryState::Retrying,
        DeliveryState::Sent,
        DeliveryState::Delivered,
        DeliveryState::Read,
        DeliveryState::Failed,
        DeliveryState::Skipped,
        DeliveryState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Queued => "queued",
            DeliveryState::Sending => "sending",
            DeliveryState::Retrying => "retrying",
            DeliveryState::Sent => "sent",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Read => "read",
            DeliveryState::Failed => "failed",
            DeliveryState::Skipped => "skipped",
            DeliveryState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryState> {
        DeliveryState::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// The dispatcher has nothing more to do (receipts may still move sent -> delivered -> read).
    pub fn is_settled(self) -> bool {
        !matches!(
            self,
            DeliveryState::Queued | DeliveryState::Sending | DeliveryState::Retrying
        )
    }

    /// The allowed moves. Receipts only move forward: a late "delivered" after "read" changes nothing.
    pub fn can_move_to(self, to: DeliveryState) -> bool {
        use DeliveryState::*;
        matches!(
            (self, to),
            (Queued, Sending | Skipped | Failed | Cancelled)
                | (Retrying, Sending | Cancelled)
                // A lease that expired is claimed again: sending -> sending.
                | (Sending, Sending | Sent | Delivered | Retrying | Queued | Failed)
                | (Sent, Delivered | Read | Failed | Queued)
                | (Delivered, Read)
        )
    }
}

/// Why a delivery did not (or not yet) reach its person. Stable codes, shown to staff through labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    OptedOut,
    NoAddress,
    ChannelUnavailable,
    ProviderRejected,
    RetriesExhausted,
    Undelivered,
    MessageTooLong,
    RenderFailed,
    Cancelled,
    /// Staff skipped a paused channel for the campaign; the person moved on.
    ChannelSkipped,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::OptedOut => "opted_out",
            Reason::NoAddress => "no_address",
            Reason::ChannelUnavailable => "channel_unavailable",
            Reason::ProviderRejected => "provider_rejected",
            Reason::RetriesExhausted => "retries_exhausted",
            Reason::Undelivered => "undelivered",
            Reason::MessageTooLong => "message_too_long",
            Reason::RenderFailed => "render_failed",
            Reason::Cancelled => "cancelled",
            Reason::ChannelSkipped => "channel_skipped",
        }
    }

    /// Vietnamese label for school staff.
    pub fn label_vi(code: &str) -> &'static str {
        match code {
            "opted_out" => "đã từ chối nhận tin trên mọi kênh",
            "no_address" => "không có địa chỉ liên lạc cho kênh nào",
            "channel_unavailable" => "kênh chưa được cấu hình",
            "provider_rejected" => "nhà cung cấp từ chối",
            "retries_exhausted" => "thử lại nhiều lần không thành công",
            "undelivered" => "tin không đến được máy người nhận",
            "message_too_long" => "tin nhắn quá dài",
            "render_failed" => "lỗi soạn nội dung tin",
            "cancelled" => "chiến dịch đã bị huỷ",
            "channel_skipped" => "kênh bị tạm dừng và đã được bỏ qua",
            _ => "lý do khác",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DeliveryState::*;

    #[test]
    fn forward_only() {
        assert!(Sent.can_move_to(Delivered));
        assert!(Delivered.can_move_to(Read));
        assert!(!Read.can_move_to(Delivered));
        assert!(!Delivered.can_move_to(Sent));
        assert!(!Failed.can_move_to(Sending));
        assert!(!Skipped.can_move_to(Queued));
        assert!(Sending.can_move_to(Sending), "expired leases are reclaimed");
    }

    #[test]
    fn settled_states() {
        assert!(!Queued.is_settled());
        assert!(!Retrying.is_settled());
        assert!(Sent.is_settled());
        assert!(Failed.is_settled());
    }
}

/// Which attempt of a delivery a provider's report is about: the channel (its place in the campaign's
/// order) and the attempt's number on it. A report applies to that attempt only, never to a later one
/// (a person who fell back to Messenger is not failed there by a late SMS report).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttemptRef {
    pub channel_index: i64,
    /// 1 for the first attempt on the channel.
    pub attempt: i64,
}

impl AttemptRef {
    /// `"2.1"`: channel index, then attempt.
    pub fn token(self) -> String {
        format!("{}.{}", self.channel_index, self.attempt)
    }

    pub fn parse(s: &str) -> Option<AttemptRef> {
        let (c, a) = s.split_once('.')?;
        Some(AttemptRef {
            channel_index: c.parse().ok().filter(|c: &i64| *c >= 0)?,
            attempt: a.parse().ok().filter(|a: &i64| *a >= 1)?,
        })
    }
}

#[cfg(test)]
mod attempt_ref_tests {
    use super::AttemptRef;

    #[test]
    fn attempt_tokens_round_trip_and_refuse_junk() {
        let a = AttemptRef {
            channel_index: 2,
            attempt: 3,
        };
        assert_eq!(AttemptRef::parse(&a.token()), Some(a));
        for bad in ["", "1", "a.b", "-1.1", "1.0", "1.2.3"] {
            assert_eq!(AttemptRef::parse(bad), None, "{bad}");
        }
    }
}

/// A delivery the dispatcher holds a lease on, with the person's addresses.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub id: i64,
    pub run_id: i64,
    pub campaign_id: i64,
    pub contact_id: Option<i64>,
    pub channel: Option<Channel>,
    pub channel_index: i64,
    pub attempts: i64,
    pub state: DeliveryState,
    pub reason: Option<String>,
    pub vars: String,
    pub addresses: Addresses,
    pub opt_out: OptOuts,
    /// Staff chose to skip this channel for the campaign: the person moves on to their next one.
    pub channel_skipped: bool,
}

/// The new state of a delivery after an attempt or a receipt; applied only if the delivery is still
/// in `expected` (so a late or duplicate writer changes nothing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryUpdate {
    pub id: i64,
    pub expected: DeliveryState,
    pub state: DeliveryState,
    pub channel: Option<Channel>,
    pub channel_index: i64,
    pub attempts: i64,
    pub next_attempt_at: Millis,
    pub provider_message_id: Option<String>,
    pub segments: Option<i64>,
    pub reason_code: Option<Reason>,
    pub reason: Option<String>,
    /// Receipts will name the message by `provider_message_id` only: index it.
    pub receipt_by_provider_id: bool,
    /// When the message was handed to the provider (taken just before the call, so a watermark
    /// "everything sent before or at T" counts it); None: the time of recording.
    pub sent_at: Option<Millis>,
}

#[derive(Clone, Debug, Default)]
pub struct DeliveryFilter {
    pub state: Option<DeliveryState>,
    pub channel: Option<Channel>,
    pub after_id: Option<i64>,
    pub limit: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct DeliveryRow {
    pub id: i64,
    pub contact_id: Option<i64>,
    pub full_name: Option<String>,
    pub role: Option<String>,
    pub org_id: i64,
    pub channel: Option<String>,
    pub to: Option<String>,
    pub state: String,
    pub attempts: i64,
    pub segments: Option<i64>,
    pub reason_code: Option<String>,
    pub reason: Option<String>,
    pub updated_at: Millis,
}

/// One message of a person's history, for their page: which campaign, on which channel, how it ended.
#[derive(Clone, Debug, Serialize)]
pub struct ContactMessage {
    pub campaign_id: i64,
    pub campaign_name: String,
    pub channel: Option<String>,
    pub state: String,
    pub reason_code: Option<String>,
    pub updated_at: Millis,
}

/// A receipt from a provider moving a delivery forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Receipt {
    Delivered,
    Read,
}
