//! Doubles of the SMS aggregators, strict as PROVIDERS.md documents them: eSMS's JSON of strings with
//! its keys and RequestId (a duplicate answers 124), SpeedSMS's Basic auth and `to` array, and a
//! school's own gateway for the generic adapter.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const ESMS_KEY: &str = "esms-api-key";
pub const ESMS_SECRET: &str = "esms-secret";
pub const SPEEDSMS_TOKEN: &str = "speedsms-token";
pub const SPEEDSMS_HOOK: &str = "hook-token";

#[derive(Default)]
pub struct SmsState {
    /// Accepted request bodies.
    pub sent: Vec<Value>,
    /// Requests seen, accepted or not.
    pub requests: usize,
    /// Phone (as the gateway wants it) -> result code to answer.
    pub phone_errors: HashMap<String, String>,
    /// An error code every request gets.
    pub error: Option<String>,
    pub request_ids: HashSet<String>,
}

#[derive(Clone)]
pub struct SmsDouble(pub Arc<Mutex<SmsState>>);

fn json_ct(req: &Request) -> bool {
    req.headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"))
}

struct Esms(Arc<Mutex<SmsState>>);

impl Respond for Esms {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut st = self.0.lock().unwrap();
        st.requests += 1;
        let reply = |code: &str| {
            ResponseTemplate::new(200)
                .set_body_json(json!({"CodeResult": code, "ErrorMessage": ""}))
        };
        let Ok(b) = serde_json::from_slice::<Value>(&req.body) else {
            return reply("99");
        };
        if !json_ct(req) {
            return reply("99");
        }
        if b["ApiKey"] != ESMS_KEY || b["SecretKey"] != ESMS_SECRET {
            return reply("101");
        }
        // Every documented field, as strings.
        for f in [
            "Phone",
            "Content",
            "Brandname",
            "SmsType",
            "IsUnicode",
            "Sandbox",
            "RequestId",
        ] {
            if !b[f].is_string() {
                return reply("99");
            }
        }
        if b["SmsType"] != "2" || !["0", "1"].contains(&b["IsUnicode"].as_str().unwrap_or("")) {
            return reply("99");
        }
        let phone = b["Phone"].as_str().unwrap_or("");
        if !(phone.len() == 10
            && phone.starts_with('0')
            && phone.bytes().all(|c| c.is_ascii_digit()))
        {
            return reply("108");
        }
        let rid = b["RequestId"].as_str().unwrap_or("").to_string();
        if rid.is_empty() || rid.len() > 50 {
            return reply("99");
        }
        if let Some(code) = st
            .error
            .clone()
            .or_else(|| st.phone_errors.get(phone).cloned())
        {
            return reply(&code);
        }
        if !st.request_ids.insert(rid) {
            return reply("124");
        }
        st.sent.push(b.clone());
        let n = st.sent.len();
        ResponseTemplate::new(200).set_body_json(
            json!({"CodeResult": "100", "CountRegenerate": 0, "SMSID": format!("esms-{n}")}),
        )
    }
}

struct Speed(Arc<Mutex<SmsState>>);

impl Respond for Speed {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        use base64::Engine;
        let mut st = self.0.lock().unwrap();
        st.requests += 1;
        let err = |code: &str, msg: &str| {
            ResponseTemplate::new(200)
                .set_body_json(json!({"status": "error", "code": code, "message": msg}))
        };
        let want = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{SPEEDSMS_TOKEN}:x"))
        );
        if req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            != Some(want.as_str())
        {
            return ResponseTemplate::new(401);
        }
        let Ok(b) = serde_json::from_slice::<Value>(&req.body) else {
            return err("101", "invalid parameters");
        };
        if !json_ct(req)
            || b["content"].as_str().is_none_or(str::is_empty)
            || !b["sms_type"].is_u64()
        {
            return err("101", "invalid parameters");
        }
        let Some(to) = b["to"].as_array().filter(|a| a.len() == 1) else {
            return err("101", "to must be an array of phones");
        };
        let phone = to[0].as_str().unwrap_or("");
        if let Some(code) = st.error.clone() {
            return err(&code, "refused");
        }
        let invalid: Vec<&str> = if phone.starts_with("84") && phone.len() == 11 {
            vec![]
        } else {
            vec![phone]
        };
        let tran = 900_001 + st.sent.len() as i64;
        // Recorded with the transaction id it was given, so a test can report on that message.
        let mut rec = b.clone();
        rec["tranId"] = json!(tran);
        st.sent.push(rec);
        ResponseTemplate::new(200).set_body_json(json!({"status": "success", "code": "00",
            "data": {"tranId": tran, "totalSMS": 1, "totalPrice": 250, "invalidPhone": invalid}}))
    }
}

/// A school's own gateway: `POST /api/sms` with a bearer key, JSON `{to, text, ref}`, answering
/// `{"status":"ok","data":{"id":..}}` or `{"status":"error"}`.
struct Gateway(Arc<Mutex<SmsState>>);

impl Respond for Gateway {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut st = self.0.lock().unwrap();
        st.requests += 1;
        if req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            != Some("Bearer gw-key")
        {
            return ResponseTemplate::new(401);
        }
        let Ok(b) = serde_json::from_slice::<Value>(&req.body) else {
            return ResponseTemplate::new(400);
        };
        let to = b["to"].as_str().unwrap_or("").to_string();
        if let Some(code) = st.phone_errors.get(&to) {
            return ResponseTemplate::new(200)
                .set_body_json(json!({"status": "error", "reason": code}));
        }
        st.sent.push(b.clone());
        let n = st.sent.len();
        ResponseTemplate::new(200).set_body_json(json!({"status": "ok", "data": {"id": n}}))
    }
}

impl SmsDouble {
    async fn start_with<R: Respond + 'static>(
        route: &str,
        make: impl FnOnce(Arc<Mutex<SmsState>>) -> R,
    ) -> (MockServer, SmsDouble) {
        let st = Arc::new(Mutex::new(SmsState::default()));
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(route))
            .respond_with(make(st.clone()))
            .mount(&server)
            .await;
        (server, SmsDouble(st))
    }
    pub async fn esms() -> (MockServer, SmsDouble) {
        Self::start_with(
            "/MainService.svc/json/SendMultipleMessage_V4_post_json/",
            Esms,
        )
        .await
    }
    pub async fn speedsms() -> (MockServer, SmsDouble) {
        Self::start_with("/index.php/sms/send", Speed).await
    }
    pub async fn gateway() -> (MockServer, SmsDouble) {
        Self::start_with("/api/sms", Gateway).await
    }
    pub fn sent(&self) -> Vec<Value> {
        self.0.lock().unwrap().sent.clone()
    }
}

fn sms_route(cfg: &mut loa::config::Config, name: &str, kind: loa::config::ProviderKind) {
    super::route(cfg, providers::Channel::Sms, name, kind);
}

use super::secret;

pub fn esms_provider(cfg: &mut loa::config::Config, base_url: &str) {
    sms_route(
        cfg,
        "esms",
        loa::config::ProviderKind::Esms {
            api_key: ESMS_KEY.into(),
            secret_key: Some(secret(ESMS_SECRET)),
            secret_key_file: None,
            brandname: "THMYPHU".into(),
            sandbox: false,
            base_url: base_url.into(),
            timeout_seconds: 5,
        },
    );
}

pub fn speedsms_provider(cfg: &mut loa::config::Config, base_url: &str) {
    sms_route(
        cfg,
        "speedsms",
        loa::config::ProviderKind::Speedsms {
            token: Some(secret(SPEEDSMS_TOKEN)),
            token_file: None,
            sms_type: 3,
            sender: Some("THMYPHU".into()),
            webhook_token: Some(secret(SPEEDSMS_HOOK)),
            base_url: base_url.into(),
            timeout_seconds: 5,
        },
    );
}

pub fn gateway_provider(cfg: &mut loa::config::Config, base_url: &str) {
    sms_route(
        cfg,
        "gw",
        loa::config::ProviderKind::HttpSms {
            method: "POST".into(),
            url: format!("{base_url}/api/sms"),
            headers: [("Authorization".to_string(), secret("Bearer gw-key"))].into(),
            body: Some(r#"{"to":"{{ to }}","text":{{ text|tojson }},"ref":"{{ id }}"}"#.into()),
            content_type: "application/json".into(),
            success_pointer: Some("/status".into()),
            success_value: Some("ok".into()),
            id_pointer: Some("/data/id".into()),
            timeout_seconds: 5,
        },
    );
}

/// A school's own SMS gateway (see `gateway_provider`) that refuses every number, quoting it as
/// gateways do: `400 Invalid destination number 84912000000`.
pub struct RefusesQuotingTheNumber;

impl Respond for RefusesQuotingTheNumber {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let to = serde_json::from_slice::<Value>(&req.body)
            .ok()
            .and_then(|b| b["to"].as_str().map(String::from))
            .unwrap_or_default();
        ResponseTemplate::new(400).set_body_string(format!("Invalid destination number {to}"))
    }
}

pub async fn refusing_gateway() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/sms"))
        .respond_with(RefusesQuotingTheNumber)
        .mount(&server)
        .await;
    server
}
