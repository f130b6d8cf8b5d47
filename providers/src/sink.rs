//! Local sink provider for the demo and development: writes each message where a person can open it
//! (`.eml` files for email, one JSON line per message for the other channels). Used only when configured.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use lettre::message::Mailbox;
use serde::Serialize;

use crate::{Accepted, Channel, Message, Provider, SendError};

pub struct SinkProvider {
    name: String,
    channel: Channel,
    dir: PathBuf,
    from: Mailbox,
    /// Deterministic share (per thousand addresses) refused as "not reachable on this channel", so a
    /// demo shows channel fallback. Zero unless configured.
    fail_per_mille: u32,
    jsonl: Mutex<Option<std::fs::File>>,
}

#[derive(Serialize)]
struct Line<'a> {
    id: &'a str,
    channel: Channel,
    to: &'a str,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    segments: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ucs2: Option<bool>,
}

impl SinkProvider {
    pub fn new(
        name: &str,
        channel: Channel,
        dir: PathBuf,
        fail_per_mille: u32,
    ) -> Result<Self, String> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("sink {name}: cannot create {}: {e}", dir.display()))?;
        let from = "Loa <loa@localhost>".parse().map_err(|e| format!("{e}"))?;
        Ok(SinkProvider {
            name: name.to_string(),
            channel,
            dir,
            from,
            fail_per_mille,
            jsonl: Mutex::new(None),
        })
    }

    /// Where this sink writes: a folder of `.eml` files for email, a `.jsonl` file otherwise.
    pub fn location(&self) -> PathBuf {
        match self.channel {
            Channel::Email => self.dir.join("email"),
            c => self.dir.join(format!("{c}.jsonl")),
        }
    }

    fn simulated_refusal(&self, to: &str) -> bool {
        if self.fail_per_mille == 0 {
            return false;
        }
        // FNV-1a: stable across runs and platforms, unlike std's randomly seeded hasher.
        let h = to.bytes().fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100000001b3)
        });
        (h % 1000) < self.fail_per_mille as u64
    }

    fn write(&self, msg: &Message) -> std::io::Result<()> {
        if self.channel == Channel::Email {
            let dir = self.location();
            std::fs::create_dir_all(&dir)?;
            let email = crate::email::build_email(msg, &self.from).map_err(|e| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string())
            })?;
            return std::fs::write(dir.join(format!("{}.eml", msg.id)), email.formatted());
        }
        let line = Line {
            id: &msg.id,
            channel: msg.channel,
            to: &msg.to,
            text: &msg.text,
            segments: msg.sms.map(|s| s.segments),
            ucs2: msg.sms.map(|s| s.ucs2),
        };
        let mut json = serde_json::to_vec(&line).map_err(std::io::Error::other)?;
        json.push(b'\n');
        let mut guard = self
            .jsonl
            .lock()
            .map_err(|_| std::io::Error::other("sink lock poisoned"))?;
        if guard.is_none() {
            *guard = Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.location())?,
            );
        }
        match guard.as_mut() {
            Some(f) => f.write_all(&json),
            None => Err(std::io::Error::other("sink file not open")),
        }
    }
}

#[async_trait::async_trait]
impl Provider for SinkProvider {
    fn name(&self) -> &str {
        &self.name
    }
    fn channel(&self) -> Channel {
        self.channel
    }
    async fn send(&self, msg: &Message) -> Result<Accepted, SendError> {
        if self.simulated_refusal(&msg.to) {
            return Err(SendError::permanent(format!(
                "{} sink: recipient not reachable on {} (simulated)",
                self.name, self.channel
            )));
        }
        if msg.channel == Channel::Email && msg.to.parse::<Mailbox>().is_err() {
            return Err(SendError::permanent("invalid email address"));
        }
        self.write(msg)
            .map_err(|e| SendError::transient(format!("sink write failed: {e}")))?;
        Ok(Accepted {
            provider_message_id: Some(format!("sink-{}", msg.id)),
            delivered: true,
            receipt_by_provider_id: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(channel: Channel, to: &str) -> Message {
        Message {
            subject: Some("Thông báo".into()),
            ..Message::new("7".into(), channel, to.into(), "Xin chào".into())
        }
    }

    #[tokio::test]
    async fn writes_eml_and_jsonl() {
        let dir = std::env::temp_dir().join(format!("loa-sink-test-{}", std::process::id()));
        let email = SinkProvider::new("e", Channel::Email, dir.clone(), 0).unwrap();
        email.send(&msg(Channel::Email, "a@b.vn")).await.unwrap();
        let eml = std::fs::read_to_string(dir.join("email/7.eml")).unwrap();
        assert!(eml.contains("To: a@b.vn"));
        let sms = SinkProvider::new("s", Channel::Sms, dir.clone(), 0).unwrap();
        sms.send(&msg(Channel::Sms, "+84912345678")).await.unwrap();
        let line = std::fs::read_to_string(dir.join("sms.jsonl")).unwrap();
        let v: serde_json::Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
        assert_eq!(v["to"], "+84912345678");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn simulated_refusals_are_stable_and_permanent() {
        let dir = std::env::temp_dir().join(format!("loa-sink-fail-{}", std::process::id()));
        let sink = SinkProvider::new("z", Channel::Zalo, dir.clone(), 1000).unwrap();
        assert!(matches!(
            sink.send(&msg(Channel::Zalo, "123")).await,
            Err(SendError::Permanent { .. })
        ));
        std::fs::remove_dir_all(dir).ok();
    }
}
