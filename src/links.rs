//! URLs Loa puts in messages and hands to providers: unsubscribe links and signed delivery-report
//! callbacks (Kannel cannot sign its callbacks, so the URL carries an HMAC of the delivery id).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::Channel;

pub struct Links {
    public_url: String,
    secret: Vec<u8>,
    pub unsubscribe_mailto: Option<String>,
}

type HmacSha256 = Hmac<Sha256>;

impl Links {
    pub fn new(public_url: &str, secret: &[u8], unsubscribe_mailto: Option<String>) -> Self {
        Links {
            public_url: public_url.trim_end_matches('/').to_string(),
            secret: secret.to_vec(),
            unsubscribe_mailto,
        }
    }

    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    pub fn unsubscribe(&self, token: &str, channel: Channel) -> String {
        format!("{}/u/{token}?c={channel}", self.public_url)
    }

    fn mac(&self, id: i64) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut m =
            <HmacSha256 as Mac>::new_from_slice(&self.secret).expect("hmac accepts any key length");
        m.update(id.to_string().as_bytes());
        m
    }

    fn sign(&self, id: i64) -> String {
        hex::encode(&self.mac(id).finalize().into_bytes()[..16])
    }

    /// Constant-time check of a callback's signature.
    pub fn verify(&self, id: i64, sig: &str) -> bool {
        match hex::decode(sig) {
            Ok(bytes) if bytes.len() == 16 => self.mac(id).verify_truncated_left(&bytes).is_ok(),
            _ => false,
        }
    }

    /// Delivery-report callback for an SMS gateway.
    pub fn sms_report(&self, provider: &str, id: i64) -> String {
        format!(
            "{}/webhooks/{provider}?id={id}&sig={}",
            self.public_url,
            self.sign(id)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_for_their_id() {
        let l = Links::new("http://x/", b"secret", None);
        let url = l.sms_report("kannel", 42);
        assert!(url.starts_with("http://x/webhooks/kannel?id=42&sig="));
        let sig = url.rsplit("sig=").next().unwrap();
        assert!(l.verify(42, sig));
        assert!(!l.verify(43, sig));
        assert!(!l.verify(42, "00"));
        assert!(!Links::new("http://x", b"other", None).verify(42, sig));
    }
}
