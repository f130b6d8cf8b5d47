//! A Kannel smsbox double for fault injection: speaks `/cgi-bin/sendsms` and refuses what Kannel
//! refuses (403 bad credentials, 400 missing receiver or text), with scripted 503s and delays.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

#[derive(Clone, Debug)]
pub struct Sent {
    pub at: Instant,
    pub to: String,
    pub text: String,
    /// Our delivery id, read back from the dlr-url.
    pub delivery_id: String,
    pub dlr_url: String,
}

#[derive(Clone, Default)]
pub struct KannelDouble {
    pub sent: Arc<Mutex<Vec<Sent>>>,
    /// Status codes to answer with before accepting (e.g. [503, 503]).
    pub script: Arc<Mutex<VecDeque<u16>>>,
    pub delay: Duration,
    /// `Retry-After` sent with the scripted answers (as a proxy or a throttling gateway would).
    pub retry_after: Option<&'static str>,
    /// Every request's arrival and the status it got.
    pub seen: Arc<Mutex<Vec<(Instant, u16)>>>,
}

impl Respond for KannelDouble {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let q: std::collections::HashMap<String, String> =
            req.url.query_pairs().into_owned().collect();
        if q.get("username").map(String::as_str) != Some("tester")
            || q.get("password").map(String::as_str) != Some("foobar")
        {
            return ResponseTemplate::new(403).set_body_string("Authorization failed for sendsms");
        }
        let (Some(to), Some(text)) = (q.get("to"), q.get("text")) else {
            return ResponseTemplate::new(400).set_body_string("Missing receiver number");
        };
        if let Some(code) = self.script.lock().unwrap().pop_front() {
            self.seen.lock().unwrap().push((Instant::now(), code));
            let mut r = ResponseTemplate::new(code).set_body_string(if code == 429 {
                "Too many requests"
            } else {
                "Temporal failure, try again later"
            });
            if let Some(after) = self.retry_after {
                r = r.insert_header("Retry-After", after);
            }
            return r;
        }
        self.seen.lock().unwrap().push((Instant::now(), 202));
        let dlr_url = q.get("dlr-url").cloned().unwrap_or_default();
        let delivery_id = url::Url::parse(&dlr_url)
            .ok()
            .and_then(|u| {
                u.query_pairs()
                    .find(|(k, _)| k == "id")
                    .map(|(_, v)| v.into_owned())
            })
            .unwrap_or_default();
        self.sent.lock().unwrap().push(Sent {
            at: Instant::now(),
            to: to.clone(),
            text: text.clone(),
            delivery_id,
            dlr_url,
        });
        ResponseTemplate::new(202)
            .set_body_string("0: Accepted for delivery")
            .set_delay(self.delay)
    }
}

impl KannelDouble {
    pub async fn start(self) -> (MockServer, KannelDouble) {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/cgi-bin/sendsms"))
            .respond_with(self.clone())
            .mount(&server)
            .await;
        (server, self)
    }

    /// After a crash and a restart: every one of `n` deliveries reached the gateway, each person only
    /// ever under their one delivery id (a re-send carries the same idempotency key). Returns how many
    /// sends were repeats.
    pub fn assert_each_once_by_id(&self, n: usize) -> usize {
        let sent = self.sent();
        let ids: std::collections::HashSet<&str> =
            sent.iter().map(|s| s.delivery_id.as_str()).collect();
        assert_eq!(ids.len(), n, "every delivery reached the gateway");
        let mut id_of_phone: std::collections::HashMap<&str, &str> =
            std::collections::HashMap::new();
        for s in &sent {
            assert_eq!(
                *id_of_phone.entry(&s.to).or_insert(&s.delivery_id),
                s.delivery_id,
                "{} got two different ids",
                s.to
            );
        }
        sent.len() - n
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.sent.lock().unwrap().clone()
    }
}

/// Config for a Kannel provider carrying SMS at `base_url`.
pub fn kannel_provider(
    cfg: &mut loa::config::Config,
    base_url: &str,
    rate: Option<u32>,
    burst: Option<u32>,
) {
    use loa::config::{ProviderConfig, ProviderKind};
    cfg.providers.insert(
        "kannel".into(),
        ProviderConfig {
            kind: ProviderKind::Kannel {
                base_url: base_url.into(),
                username: "tester".into(),
                password: Some(serde_json::from_value(serde_json::json!("foobar")).unwrap()),
                password_file: None,
                from: Some("TRUONGMP".into()),
                smsc: None,
                timeout_seconds: 5,
            },
            rate_per_second: rate,
            burst,
            unaccent: true,
            max_segments: Some(3),
        },
    );
    cfg.channels
        .insert(providers::Channel::Sms, "kannel".into());
}

/// Makes the configured Kannel provider use a password the gateway refuses.
pub fn wrong_kannel_password(cfg: &mut loa::config::Config) {
    if let loa::config::ProviderKind::Kannel { password, .. } =
        &mut cfg.providers.get_mut("kannel").unwrap().kind
    {
        *password = Some(serde_json::from_value(serde_json::json!("wrong")).unwrap());
    }
}
