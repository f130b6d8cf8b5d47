//! URLs Loa puts in messages and hands to providers, signed with the instance's secret so nobody can
//! forge them: unsubscribe links (`/u/<contact id>-<mac>?c=<channel>`, the MAC covering the contact
//! and the channel, nothing stored per contact) and delivery-report callbacks (Kannel cannot sign its
//! callbacks, so the URL carries the signature).
//!
//! Links sent before the channel was signed (their MAC covers the contact only) still work for email,
//! the one channel mail clients unsubscribe from by themselves (RFC 8058 one-click), and for no
//! other: editing `c=` of such a link cannot reach another channel.

use crate::domain::delivery::AttemptRef;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::Channel;

pub struct Links {
    public_url: String,
    /// The MAC already keyed with the secret: cloning it skips hashing the key for every link.
    keyed: HmacSha256,
    pub unsubscribe_mailto: Option<String>,
}

type HmacSha256 = Hmac<Sha256>;

/// What a signature is for, mixed into the MAC so one kind never passes as the other.
#[derive(Clone, Copy)]
enum Purpose {
    Report,
    /// Links before the channel was signed: the contact only.
    LegacyUnsubscribe,
    /// The contact and the channel the link stops.
    Unsubscribe,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::Report => b"report:",
            Purpose::LegacyUnsubscribe => b"unsubscribe:",
            Purpose::Unsubscribe => b"unsubscribe-channel:",
        }
    }
}

impl Links {
    pub fn new(public_url: &str, secret: &[u8], unsubscribe_mailto: Option<String>) -> Self {
        Links {
            public_url: public_url.trim_end_matches('/').to_string(),
            // HMAC accepts keys of any length, so this cannot fail.
            keyed: <HmacSha256 as Mac>::new_from_slice(secret)
                .expect("hmac accepts any key length"),
            unsubscribe_mailto,
        }
    }

    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The unsubscribe link of a person for one channel; the signature covers both.
    pub fn unsubscribe(&self, contact_id: i64, channel: Channel) -> String {
        format!(
            "{}/u/{contact_id}-{}?c={channel}",
            self.public_url,
            sign_mac(self.unsubscribe_mac(contact_id, channel))
        )
    }

    /// The contact an unsubscribe token names, if the signature is ours for that contact and
    /// `channel`. A link signed before channels were (contact only) is honoured for email alone.
    pub fn verify_unsubscribe(&self, token: &str, channel: Channel) -> Option<i64> {
        let (id, sig) = token.split_once('-')?;
        let id: i64 = id.parse().ok()?;
        let ok = verify_mac(self.unsubscribe_mac(id, channel), sig)
            || (channel == Channel::Email
                && verify_mac(self.mac(Purpose::LegacyUnsubscribe, id), sig));
        ok.then_some(id)
    }

    fn unsubscribe_mac(&self, id: i64, channel: Channel) -> HmacSha256 {
        let mut m = self.mac(Purpose::Unsubscribe, id);
        m.update(b"@");
        m.update(channel.as_str().as_bytes());
        m
    }

    /// Checks a delivery-report callback's signature, which covers the delivery and its attempt.
    pub fn verify(&self, id: i64, at: AttemptRef, sig: &str) -> bool {
        verify_mac(self.report_mac(id, at), sig)
    }

    /// Delivery-report callback for an SMS gateway, for one attempt of one delivery: a report that
    /// comes back after the person moved on can name only the attempt it was for.
    pub fn sms_report(&self, provider: &str, id: i64, at: AttemptRef) -> String {
        format!(
            "{}/webhooks/{provider}?id={id}&at={}&sig={}",
            self.public_url,
            at.token(),
            sign_mac(self.report_mac(id, at))
        )
    }

    fn report_mac(&self, id: i64, at: AttemptRef) -> HmacSha256 {
        let mut m = self.mac(Purpose::Report, id);
        m.update(b"@");
        m.update(at.token().as_bytes());
        m
    }

    fn mac(&self, purpose: Purpose, id: i64) -> HmacSha256 {
        let mut m = self.keyed.clone();
        m.update(purpose.label());
        m.update(id.to_string().as_bytes());
        m
    }
}

/// The first 16 bytes of the MAC, in hex: what a link carries.
fn sign_mac(m: HmacSha256) -> String {
    hex::encode(&m.finalize().into_bytes()[..16])
}

/// Constant-time check of a link's signature against the MAC it should carry.
fn verify_mac(m: HmacSha256, sig: &str) -> bool {
    match hex::decode(sig) {
        Ok(bytes) if bytes.len() == 16 => m.verify_truncated_left(&bytes).is_ok(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_for_their_id() {
        let l = Links::new("http://x/", b"secret", None);
        let at = AttemptRef {
            channel_index: 1,
            attempt: 2,
        };
        let url = l.sms_report("kannel", 42, at);
        assert!(url.starts_with("http://x/webhooks/kannel?id=42&at=1.2&sig="));
        let sig = url.rsplit("sig=").next().unwrap();
        assert!(l.verify(42, at, sig));
        assert!(!l.verify(43, at, sig));
        let later = AttemptRef {
            channel_index: 2,
            attempt: 1,
        };
        assert!(!l.verify(42, later, sig), "the attempt is signed too");
        assert!(!l.verify(42, at, "00"));
        assert!(!Links::new("http://x", b"other", None).verify(42, at, sig));
    }

    #[test]
    fn unsubscribe_tokens_name_their_contact_and_cannot_be_forged() {
        let l = Links::new("http://x", b"secret", None);
        let url = l.unsubscribe(7, Channel::Email);
        let token = url
            .trim_start_matches("http://x/u/")
            .split('?')
            .next()
            .unwrap();
        assert!(url.ends_with("?c=email"), "{url}");
        assert_eq!(l.verify_unsubscribe(token, Channel::Email), Some(7));
        let sig = token.split_once('-').unwrap().1;
        assert_eq!(
            l.verify_unsubscribe(&format!("8-{sig}"), Channel::Email),
            None,
            "another contact's id"
        );
        assert!(
            !l.verify(
                7,
                AttemptRef {
                    channel_index: 0,
                    attempt: 1
                },
                sig
            ),
            "an unsubscribe signature is not a report signature"
        );
        assert_eq!(l.verify_unsubscribe("7", Channel::Email), None);
        assert_eq!(l.verify_unsubscribe("x-00", Channel::Email), None);
    }

    #[test]
    fn an_unsubscribe_link_acts_on_its_own_channel_only() {
        let l = Links::new("http://x", b"secret", None);
        let token = |url: String| {
            url.trim_start_matches("http://x/u/")
                .split('?')
                .next()
                .unwrap()
                .to_string()
        };
        let email = token(l.unsubscribe(7, Channel::Email));
        for other in [
            Channel::Sms,
            Channel::Zalo,
            Channel::ZaloZns,
            Channel::Messenger,
        ] {
            assert_eq!(
                l.verify_unsubscribe(&email, other),
                None,
                "an email link must not stop {other}"
            );
        }
        let sms = token(l.unsubscribe(7, Channel::Sms));
        assert_eq!(l.verify_unsubscribe(&sms, Channel::Sms), Some(7));
        assert_eq!(l.verify_unsubscribe(&sms, Channel::Email), None);
        // A link from before the channel was signed: email only, never wider.
        let legacy = format!("7-{}", sign_mac(l.mac(Purpose::LegacyUnsubscribe, 7)));
        assert_eq!(l.verify_unsubscribe(&legacy, Channel::Email), Some(7));
        assert_eq!(l.verify_unsubscribe(&legacy, Channel::Sms), None);
        assert_eq!(l.verify_unsubscribe(&legacy, Channel::Zalo), None);
    }
}
