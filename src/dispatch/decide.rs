//! The dispatcher's one rule book, without I/O: given a claimed delivery and what happened to it, the
//! delivery's next state (sent, retry later, next channel, failed). Also the first state at fan-out.

use providers::{Accepted, SendError};

use crate::domain::channel_choice::{ChannelChoice, choose_channel};
use crate::domain::contact::{Addresses, OptOuts};
use crate::domain::delivery::{DeliveryState, Reason};
use crate::domain::{Channel, Millis};
use crate::store::{Claimed, DeliveryUpdate};

#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub max_attempts: i64,
    pub base_ms: u64,
    pub max_ms: u64,
}

/// What happened when the dispatcher tried one delivery.
#[derive(Clone, Debug)]
pub enum Attempt {
    Sent {
        accepted: Accepted,
        segments: Option<i64>,
        /// When the send began.
        at: Millis,
    },
    Failed(SendError),
    /// Could not even be handed to a provider on this channel (no route, too long, render error):
    /// permanent for the channel, not counted as a provider attempt.
    Unsendable {
        reason: Reason,
        detail: String,
    },
}

/// Exponential backoff with "equal jitter": half the delay is fixed, half random, so retries of a
/// batch that failed together spread out. `jitter` is uniform in [0, 1).
pub fn backoff_ms(p: &RetryPolicy, attempts: i64, jitter: f64) -> u64 {
    let exp = attempts.saturating_sub(1).clamp(0, 30) as u32;
    let full = p.base_ms.saturating_mul(1u64 << exp).min(p.max_ms);
    full / 2 + ((full / 2) as f64 * jitter.clamp(0.0, 1.0)) as u64
}

/// Keeps every channel's failure in the reason, so staff see the whole path a message took. Every
/// reason a delivery is given passes here (provider refusals, retries, failed delivery reports,
/// unsendable messages), so this is where the addresses providers quote are masked: the person's
/// own and any other phone number or email (`providers::mask_personal`).
fn append_reason(d: &Claimed, detail: &str) -> String {
    let prev = &d.reason;
    let detail = providers::mask_personal(detail, &d.addresses.known());
    let line = match d.channel {
        Some(c) => format!("{c}: {detail}"),
        None => detail,
    };
    let mut s = match prev {
        Some(p) if !p.is_empty() => format!("{p}; {line}"),
        _ => line,
    };
    if s.len() > 1000 {
        let mut cut = 1000;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

/// The next channel after a permanent failure on the current one, or failed with `code`.
pub fn fall_back(
    d: &Claimed,
    order: &[Channel],
    code: Reason,
    detail: &str,
    attempts: i64,
    now: Millis,
) -> DeliveryUpdate {
    let reason = Some(append_reason(d, detail));
    let base = DeliveryUpdate {
        id: d.id,
        expected: d.state,
        state: DeliveryState::Failed,
        channel: d.channel,
        channel_index: d.channel_index,
        attempts,
        next_attempt_at: now,
        provider_message_id: None,
        segments: None,
        reason_code: Some(code),
        reason: reason.clone(),
        receipt_by_provider_id: false,
        sent_at: None,
    };
    let u = match choose_channel(
        order,
        (d.channel_index + 1) as usize,
        &d.addresses,
        d.opt_out,
    ) {
        ChannelChoice::Use { index, channel } => DeliveryUpdate {
            state: DeliveryState::Queued,
            channel: Some(channel),
            channel_index: index as i64,
            attempts: 0,
            ..base
        },
        ChannelChoice::None(_) => base,
    };
    lawful(d, u)
}

/// The rule book may only make the moves the domain's state machine allows.
fn lawful(d: &Claimed, u: DeliveryUpdate) -> DeliveryUpdate {
    debug_assert!(
        d.state.can_move_to(u.state),
        "delivery {}: {:?} -> {:?} is not an allowed move",
        d.id,
        d.state,
        u.state
    );
    u
}

pub fn decide(
    d: &Claimed,
    order: &[Channel],
    attempt: Attempt,
    p: &RetryPolicy,
    now: Millis,
    jitter: f64,
) -> DeliveryUpdate {
    let attempts = d.attempts + 1;
    let keep = DeliveryUpdate {
        id: d.id,
        expected: d.state,
        state: DeliveryState::Sending,
        channel: d.channel,
        channel_index: d.channel_index,
        attempts,
        next_attempt_at: now,
        provider_message_id: None,
        segments: None,
        reason_code: None,
        reason: d.reason.clone(),
        receipt_by_provider_id: false,
        sent_at: None,
    };
    let u = match attempt {
        Attempt::Sent {
            accepted,
            segments,
            at,
        } => DeliveryUpdate {
            sent_at: Some(at),
            state: if accepted.delivered {
                DeliveryState::Delivered
            } else {
                DeliveryState::Sent
            },
            receipt_by_provider_id: accepted.receipt_by_provider_id,
            provider_message_id: accepted.provider_message_id,
            segments,
            ..keep
        },
        Attempt::Failed(SendError::Transient {
            reason,
            retry_after,
        }) => {
            if attempts >= p.max_attempts {
                let detail = format!("{reason} (after {attempts} attempts)");
                return fall_back(d, order, Reason::RetriesExhausted, &detail, attempts, now);
            }
            let wait = backoff_ms(p, attempts, jitter)
                .max(retry_after.map(|r| r.as_millis() as u64).unwrap_or(0));
            DeliveryUpdate {
                state: DeliveryState::Retrying,
                next_attempt_at: now + wait as i64,
                reason: Some(append_reason(d, &reason)),
                ..keep
            }
        }
        // The provider's own throttling is not the person's fault: no attempt is counted.
        Attempt::Failed(SendError::RateLimited {
            reason,
            retry_after,
        }) => DeliveryUpdate {
            state: if d.attempts == 0 {
                DeliveryState::Queued
            } else {
                DeliveryState::Retrying
            },
            attempts: d.attempts,
            next_attempt_at: now + retry_after.map(|r| r.as_millis() as i64).unwrap_or(1000),
            reason: Some(append_reason(d, &reason)),
            ..keep
        },
        // The whole channel is paused for the campaign (the dispatcher records the pause first): the
        // person waits, unclaimed and with no attempt counted, until staff resume or skip the channel.
        Attempt::Failed(SendError::CampaignFault { .. }) => DeliveryUpdate {
            state: if d.attempts == 0 {
                DeliveryState::Queued
            } else {
                DeliveryState::Retrying
            },
            attempts: d.attempts,
            ..keep
        },
        Attempt::Failed(SendError::Permanent { reason }) => {
            fall_back(d, order, Reason::ProviderRejected, &reason, attempts, now)
        }
        Attempt::Unsendable { reason, detail } => {
            fall_back(d, order, reason, &detail, d.attempts, now)
        }
    };
    lawful(d, u)
}

/// A person's first state when the audience is fanned out. The SQLite fan-out computes this in SQL
/// (`store::sqlite::fanout::insert`); a store test holds the two to the same answers.
pub fn initial(
    order: &[Channel],
    addr: &Addresses,
    opt: OptOuts,
) -> (Option<Channel>, i64, DeliveryState, Option<Reason>) {
    match choose_channel(order, 0, addr, opt) {
        ChannelChoice::Use { index, channel } => {
            (Some(channel), index as i64, DeliveryState::Queued, None)
        }
        ChannelChoice::None(Reason::OptedOut) => {
            (None, 0, DeliveryState::Skipped, Some(Reason::OptedOut))
        }
        ChannelChoice::None(r) => (None, 0, DeliveryState::Failed, Some(r)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Channel::*;
    use std::time::Duration;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            base_ms: 1000,
            max_ms: 60_000,
        }
    }

    fn claimed(channel: Channel, index: i64, attempts: i64) -> Claimed {
        Claimed {
            id: 1,
            run_id: 1,
            campaign_id: 1,
            contact_id: Some(1),
            channel: Some(channel),
            channel_index: index,
            attempts,
            state: DeliveryState::Sending,
            reason: None,
            vars: "{}".into(),
            channel_skipped: false,
            addresses: Addresses {
                phone: Some("+84912345678".into()),
                email: Some("a@b.vn".into()),
                zalo_user_id: Some("z".into()),
                facebook_psid: None,
            },
            opt_out: OptOuts(0),
        }
    }

    #[test]
    fn success_records_sent_or_delivered() {
        let u = decide(
            &claimed(Sms, 0, 0),
            &[Sms],
            Attempt::Sent {
                accepted: Accepted::default(),
                segments: Some(2),
                at: 0,
            },
            &policy(),
            0,
            0.0,
        );
        assert_eq!(
            (u.state, u.attempts, u.segments),
            (DeliveryState::Sent, 1, Some(2))
        );
        let sink = Accepted {
            provider_message_id: Some("x".into()),
            delivered: true,
            ..Accepted::default()
        };
        let u = decide(
            &claimed(Sms, 0, 0),
            &[Sms],
            Attempt::Sent {
                accepted: sink,
                segments: None,
                at: 0,
            },
            &policy(),
            0,
            0.0,
        );
        assert_eq!(u.state, DeliveryState::Delivered);
    }

    #[test]
    fn transient_retries_with_growing_delay_then_falls_back() {
        let err = || Attempt::Failed(SendError::transient("503"));
        let u1 = decide(
            &claimed(Sms, 0, 0),
            &[Sms, Email],
            err(),
            &policy(),
            10_000,
            0.0,
        );
        assert_eq!(
            (u1.state, u1.next_attempt_at),
            (DeliveryState::Retrying, 10_500)
        );
        let u2 = decide(
            &claimed(Sms, 0, 1),
            &[Sms, Email],
            err(),
            &policy(),
            10_000,
            0.999,
        );
        assert_eq!(u2.state, DeliveryState::Retrying);
        assert!(
            u2.next_attempt_at > 11_000 && u2.next_attempt_at < 12_000,
            "{}",
            u2.next_attempt_at
        );
        let u3 = decide(
            &claimed(Sms, 0, 2),
            &[Sms, Email],
            err(),
            &policy(),
            10_000,
            0.0,
        );
        assert_eq!(
            (u3.state, u3.channel, u3.attempts),
            (DeliveryState::Queued, Some(Email), 0),
            "exhausted -> next channel"
        );
        let u4 = decide(&claimed(Sms, 0, 2), &[Sms], err(), &policy(), 10_000, 0.0);
        assert_eq!(
            (u4.state, u4.reason_code),
            (DeliveryState::Failed, Some(Reason::RetriesExhausted))
        );
    }

    #[test]
    fn retry_after_is_honoured() {
        let err = Attempt::Failed(SendError::Transient {
            reason: "busy".into(),
            retry_after: Some(Duration::from_secs(30)),
        });
        assert_eq!(
            decide(&claimed(Sms, 0, 0), &[Sms], err, &policy(), 0, 0.0).next_attempt_at,
            30_000
        );
    }

    #[test]
    fn the_addresses_a_provider_quotes_are_masked_in_the_reason() {
        let u = decide(
            &claimed(Sms, 0, 0),
            &[Sms],
            Attempt::Failed(SendError::permanent(
                "Invalid destination number 84912345678 (a@b.vn)",
            )),
            &policy(),
            5,
            0.0,
        );
        let reason = u.reason.unwrap_or_default();
        assert!(
            reason.starts_with("sms: Invalid destination number "),
            "{reason}"
        );
        assert!(
            !reason.contains("12345678") && !reason.contains("a@b.vn"),
            "{reason}"
        );
        assert!(reason.contains("****678"), "the last digits stay: {reason}");
    }

    #[test]
    fn permanent_moves_to_next_channel_keeping_the_reason() {
        let u = decide(
            &claimed(Zalo, 0, 0),
            &[Zalo, Sms, Email],
            Attempt::Failed(SendError::permanent("not a Zalo user")),
            &policy(),
            5,
            0.0,
        );
        assert_eq!(
            (u.state, u.channel, u.channel_index),
            (DeliveryState::Queued, Some(Sms), 1)
        );
        assert_eq!(u.reason.as_deref(), Some("zalo: not a Zalo user"));
        let mut d = claimed(Email, 2, 0);
        d.reason = u.reason.clone();
        let last = decide(
            &d,
            &[Zalo, Sms, Email],
            Attempt::Failed(SendError::permanent("550 no such user")),
            &policy(),
            5,
            0.0,
        );
        assert_eq!(
            (last.state, last.reason_code),
            (DeliveryState::Failed, Some(Reason::ProviderRejected))
        );
        assert_eq!(
            last.reason.as_deref(),
            Some("zalo: not a Zalo user; email: 550 no such user")
        );
    }

    #[test]
    fn rate_limited_does_not_count_an_attempt() {
        let err = Attempt::Failed(SendError::RateLimited {
            reason: "613".into(),
            retry_after: None,
        });
        let u = decide(&claimed(Sms, 0, 0), &[Sms], err, &policy(), 0, 0.0);
        assert_eq!(
            (u.state, u.attempts, u.next_attempt_at),
            (DeliveryState::Queued, 0, 1000)
        );
    }

    #[test]
    fn backoff_is_capped() {
        let p = policy();
        assert_eq!(backoff_ms(&p, 1, 0.0), 500);
        assert_eq!(backoff_ms(&p, 40, 0.999), 59_970);
    }

    #[test]
    fn initial_state() {
        let a = Addresses {
            phone: Some("+84912345678".into()),
            ..Default::default()
        };
        assert_eq!(
            initial(&[Zalo, Sms], &a, OptOuts(0)).2,
            DeliveryState::Queued
        );
        assert_eq!(
            initial(&[Sms], &a, OptOuts(0).with(Sms, true)),
            (None, 0, DeliveryState::Skipped, Some(Reason::OptedOut))
        );
        assert_eq!(
            initial(&[Email], &a, OptOuts(0)),
            (None, 0, DeliveryState::Failed, Some(Reason::NoAddress))
        );
    }
}
