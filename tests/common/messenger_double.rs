//! A Messenger Send API double (`POST /<version>/me/messages?access_token=`), strict as PROVIDERS.md
//! documents it: JSON body, a PSID recipient, `MESSAGE_TAG` with an allowed tag and a text; errors as
//! HTTP 4xx with Graph's `error` object.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const PAGE_TOKEN: &str = "page-token-123";
pub const APP_SECRET: &str = "fb-app-secret";
pub const VERIFY_TOKEN: &str = "loa-verify";
pub const VERSION: &str = "v25.0";

#[derive(Default)]
pub struct MessengerState {
    pub sent: Vec<Value>,
    /// PSID -> (code, subcode) to answer.
    pub psid_errors: HashMap<String, (i64, i64)>,
    /// When each accepted message reached Facebook (ms since the epoch): the earliest a read
    /// watermark for it can be.
    pub received_at_ms: Vec<i64>,
    /// How long Facebook takes to answer.
    pub delay: std::time::Duration,
}

#[derive(Clone)]
pub struct MessengerDouble(pub Arc<Mutex<MessengerState>>);

fn graph_error(status: u16, code: i64, subcode: i64, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"error": {
        "message": message, "type": "OAuthException", "code": code,
        "error_subcode": subcode, "fbtrace_id": "AbCdEf"}}))
}

struct Send(Arc<Mutex<MessengerState>>);

impl Respond for Send {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut st = self.0.lock().unwrap();
        let token = req
            .url
            .query_pairs()
            .find(|(k, _)| k == "access_token")
            .map(|(_, v)| v.into_owned());
        if token.as_deref() != Some(PAGE_TOKEN) {
            return graph_error(400, 190, 0, "Invalid OAuth access token.");
        }
        let ct = req
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
            return graph_error(400, 100, 0, "Invalid JSON");
        };
        if !ct.starts_with("application/json") {
            return graph_error(400, 100, 0, "Content-Type must be application/json");
        }
        let Some(psid) = body["recipient"]["id"].as_str().filter(|p| !p.is_empty()) else {
            return graph_error(400, 100, 0, "recipient.id is required");
        };
        if body["messaging_type"] != "MESSAGE_TAG"
            || ![
                "CONFIRMED_EVENT_UPDATE",
                "ACCOUNT_UPDATE",
                "POST_PURCHASE_UPDATE",
                "HUMAN_AGENT",
            ]
            .contains(&body["tag"].as_str().unwrap_or(""))
        {
            return graph_error(
                400,
                100,
                0,
                "A valid message tag is required outside the window",
            );
        }
        if body["message"]["text"].as_str().is_none_or(str::is_empty) {
            return graph_error(400, 100, 0, "message.text is required");
        }
        if let Some((code, sub)) = st.psid_errors.get(psid) {
            return graph_error(
                400,
                *code,
                *sub,
                "This message is sent outside of allowed window.",
            );
        }
        st.sent.push(body.clone());
        st.received_at_ms.push(loa::clock::now_ms());
        let n = st.sent.len();
        ResponseTemplate::new(200)
            .set_body_json(json!({"recipient_id": psid, "message_id": format!("m_{n:05}")}))
            .set_delay(st.delay)
    }
}

impl MessengerDouble {
    pub async fn start() -> (MockServer, MessengerDouble) {
        let st = Arc::new(Mutex::new(MessengerState::default()));
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(format!("/{VERSION}/me/messages")))
            .respond_with(Send(st.clone()))
            .mount(&server)
            .await;
        (server, MessengerDouble(st))
    }
}

/// Signs a webhook body as Facebook does.
pub fn fb_signature(body: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(APP_SECRET.as_bytes()).unwrap();
    m.update(body.as_bytes());
    format!("sha256={}", hex::encode(m.finalize().into_bytes()))
}

pub fn messenger_provider(cfg: &mut loa::config::Config, base_url: &str) {
    use super::secret;
    let kind = loa::config::ProviderKind::Facebook {
        page_token: Some(secret(PAGE_TOKEN)),
        page_token_file: None,
        app_secret: Some(secret(APP_SECRET)),
        app_secret_file: None,
        verify_token: Some(secret(VERIFY_TOKEN)),
        graph_version: VERSION.into(),
        base_url: base_url.into(),
        timeout_seconds: 5,
    };
    super::route(cfg, providers::Channel::Messenger, "facebook", kind);
}
