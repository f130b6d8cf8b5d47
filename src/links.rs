//! URLs Loa puts in messages and hands to providers, signed with the instance's secret so nobody can
//! forge them: unsubscribe links (`/u/<contact id>-<mac>`, nothing stored per contact) and
//! delivery-report callbacks (Kannel cannot sign its callbacks, so the URL carries the signature).

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
    Unsubscribe,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::Report => b"report:",
            Purpose::Unsubscribe => b"unsubscribe:",
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

    /// The unsubscribe link of a person for one channel.
    pub fn unsubscribe(&self, contact_id: i64, channel: Channel) -> String {
        format!(
            "{}/u/{contact_id}-{}?c={channel}",
            self.public_url,
            self.sign(Purpose::Unsubscribe, contact_id)
        )
    }

    /// The contact an unsubscribe token names, if the signature is ours.
    pub fn verify_unsubscribe(&self, token: &str) -> Option<i64> {
        let (id, sig) = token.split_once('-')?;
        let id: i64 = id.parse().ok()?;
        self.verify_for(Purpose::Unsubscribe, id, sig).then_some(id)
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

    fn sign(&self, purpose: Purpose, id: i64) -> String {
        sign_mac(self.mac(purpose, id))
    }

    fn verify_for(&self, purpose: Purpose, id: i64, sig: &str) -> bool {
        verify_mac(self.mac(purpose, id), sig)
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
        assert_eq!(l.verify_unsubscribe(token), Some(7));
        let sig = token.split_once('-').unwrap().1;
        assert_eq!(
            l.verify_unsubscribe(&format!("8-{sig}")),
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
        assert_eq!(l.verify_unsubscribe("7"), None);
        assert_eq!(l.verify_unsubscribe("x-00"), None);
    }
}
