//! A Zalo double speaking ZNS `POST /message/template` and OAuth v4 `POST /v4/oa/access_token` as
//! PROVIDERS.md documents them: the token in an `access_token` header, JSON bodies checked field by
//! field, answers with HTTP 200 and a JSON `error` code (numbers as strings), single-use refresh tokens.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const APP_ID: &str = "4310000000000000001";
pub const SECRET_KEY: &str = "zalo-app-secret";
pub const TEMPLATE_ID: &str = "231145";
pub const OA_SECRET: &str = "zalo-oa-webhook-secret";

#[derive(Default)]
pub struct ZaloState {
    pub access_token: String,
    pub refresh_token: String,
    pub refreshes: u32,
    /// Refresh requests seen with a good secret and app id, honoured or refused (a spent token).
    pub refresh_calls: u32,
    /// Accepted ZNS bodies.
    pub sent: Vec<Value>,
    /// Phone (84…) -> error code to answer for it.
    pub phone_errors: HashMap<String, i64>,
    /// An error every ZNS send gets (a template Zalo disabled, say).
    pub zns_error: Option<i64>,
    /// ZNS send requests seen, accepted or not.
    pub zns_requests: usize,
    /// Accepted OA bodies, with the endpoint (`cs` or `transaction`).
    pub oa_sent: Vec<(String, Value)>,
    /// OA user id -> error code to answer for it (-230: no recent interaction, …).
    pub user_errors: HashMap<String, i64>,
}

#[derive(Clone)]
pub struct ZaloDouble(pub Arc<Mutex<ZaloState>>);

fn zalo_error(code: i64, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"error": code, "message": message}))
}

/// The params Zalo approved for TEMPLATE_ID.
pub fn template_params() -> Vec<String> {
    vec![
        "parent_name".into(),
        "student_name".into(),
        "school_name".into(),
    ]
}

struct Zns(Arc<Mutex<ZaloState>>);

impl Respond for Zns {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut st = self.0.lock().unwrap();
        st.zns_requests += 1;
        let ct = req
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ct.starts_with("application/json") {
            return zalo_error(-100, "Content-Type must be application/json");
        }
        let token = req
            .headers
            .get("access_token")
            .and_then(|v| v.to_str().ok());
        if token != Some(st.access_token.as_str()) {
            return zalo_error(-124, "Access token is invalid");
        }
        let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
            return zalo_error(-100, "Body is not JSON");
        };
        let phone = body["phone"].as_str().unwrap_or("");
        if !(phone.len() == 11
            && phone.starts_with("84")
            && phone.bytes().all(|b| b.is_ascii_digit()))
        {
            return zalo_error(-108, "Phone number is invalid");
        }
        if body["template_id"].as_str() != Some(TEMPLATE_ID) {
            return zalo_error(-109, "Template id is invalid");
        }
        let Some(data) = body["template_data"].as_object().filter(|d| !d.is_empty()) else {
            return zalo_error(-111, "Template data is empty");
        };
        for p in template_params() {
            if data
                .get(&p)
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return zalo_error(-112, &format!("Template data is invalid: {p}"));
            }
        }
        let tracking = body["tracking_id"].as_str().unwrap_or("");
        if tracking.is_empty()
            || tracking.len() > 48
            || !tracking
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return zalo_error(-100, "tracking_id is invalid");
        }
        if let Some(code) = st.zns_error {
            return zalo_error(code, "Template data is invalid");
        }
        if let Some(code) = st.phone_errors.get(phone) {
            return zalo_error(*code, "User phone rejected");
        }
        st.sent.push(body.clone());
        let n = st.sent.len();
        ResponseTemplate::new(200).set_body_json(json!({
            "error": 0, "message": "Success",
            "data": {"msg_id": format!("zmsg{n:06}"), "sent_time": "1714529559833",
                     "quota": {"dailyQuota": "5000", "remainingQuota": (5000 - n).to_string()}}
        }))
    }
}

/// OA `POST /v3.0/oa/message/{cs,transaction}`: a follower's user id, a text (cs) or a
/// `transaction_education` attachment with header and text elements.
struct Oa(Arc<Mutex<ZaloState>>, &'static str);

impl Respond for Oa {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut st = self.0.lock().unwrap();
        let ct = req
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ct.starts_with("application/json") {
            return zalo_error(-201, "Content-Type must be application/json");
        }
        if req
            .headers
            .get("access_token")
            .and_then(|v| v.to_str().ok())
            != Some(st.access_token.as_str())
        {
            return zalo_error(-216, "Access token is invalid");
        }
        let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
            return zalo_error(-201, "Body is not JSON");
        };
        let Some(user) = body["recipient"]["user_id"]
            .as_str()
            .filter(|u| !u.is_empty())
        else {
            return zalo_error(-201, "recipient.user_id is required");
        };
        match self.1 {
            "cs" => {
                if body["message"]["text"].as_str().is_none_or(str::is_empty) {
                    return zalo_error(-201, "message.text is required");
                }
            }
            _ => {
                let p = &body["message"]["attachment"]["payload"];
                if body["message"]["attachment"]["type"] != "template"
                    || p["template_type"] != "transaction_education"
                    || p["language"] != "VI"
                {
                    return zalo_error(-201, "attachment must be a transaction_education template");
                }
                let kinds: Vec<&str> = p["elements"]
                    .as_array()
                    .map(|e| e.iter().filter_map(|x| x["type"].as_str()).collect())
                    .unwrap_or_default();
                if kinds.first() != Some(&"header") || !kinds.contains(&"text") {
                    return zalo_error(-201, "elements need a header then a text");
                }
            }
        }
        if let Some(code) = st.user_errors.get(user) {
            return zalo_error(*code, "User has not interacted with the OA recently");
        }
        st.oa_sent.push((self.1.to_string(), body.clone()));
        let n = st.oa_sent.len();
        ResponseTemplate::new(200).set_body_json(json!({
            "error": 0, "message": "Success",
            "data": {"message_id": format!("oamsg{n:06}"), "user_id": user}
        }))
    }
}

/// Signs a webhook body as Zalo does: `mac=sha256(app_id + body + timestamp + OA secret key)`.
pub fn zalo_signature(body: &str, timestamp: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(format!("{APP_ID}{body}{timestamp}{OA_SECRET}"));
    format!("mac={}", hex::encode(h.finalize()))
}

struct OAuth(Arc<Mutex<ZaloState>>);

impl Respond for OAuth {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut st = self.0.lock().unwrap();
        if req.headers.get("secret_key").and_then(|v| v.to_str().ok()) != Some(SECRET_KEY) {
            return ResponseTemplate::new(200).set_body_json(
                json!({"error": -14002, "error_name": "Invalid secret key", "error_description": "secret_key header is wrong"}),
            );
        }
        let form: HashMap<String, String> = url::form_urlencoded::parse(&req.body)
            .into_owned()
            .collect();
        if form.get("grant_type").map(String::as_str) != Some("refresh_token")
            || form.get("app_id").map(String::as_str) != Some(APP_ID)
        {
            return ResponseTemplate::new(200).set_body_json(
                json!({"error": -14003, "error_name": "Invalid request", "error_description": "grant_type or app_id"}),
            );
        }
        st.refresh_calls += 1;
        if form.get("refresh_token") != Some(&st.refresh_token) {
            return ResponseTemplate::new(200).set_body_json(
                json!({"error": -14014, "error_name": "Invalid refresh token", "error_description": "refresh token is used or expired"}),
            );
        }
        st.refreshes += 1;
        st.access_token = format!("access-{}", st.refreshes);
        st.refresh_token = format!("refresh-{}", st.refreshes);
        ResponseTemplate::new(200).set_body_json(json!({
            "access_token": st.access_token, "refresh_token": st.refresh_token, "expires_in": "90000"
        }))
    }
}

impl ZaloDouble {
    /// A double whose valid pair is (`access`, `refresh`).
    pub async fn start(access: &str, refresh: &str) -> (MockServer, ZaloDouble) {
        let st = Arc::new(Mutex::new(ZaloState {
            access_token: access.into(),
            refresh_token: refresh.into(),
            ..Default::default()
        }));
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/message/template"))
            .respond_with(Zns(st.clone()))
            .mount(&server)
            .await;
        for kind in ["cs", "transaction"] {
            Mock::given(method("POST"))
                .and(path(format!("/v3.0/oa/message/{kind}")))
                .respond_with(Oa(st.clone(), kind))
                .mount(&server)
                .await;
        }
        Mock::given(method("POST"))
            .and(path("/v4/oa/access_token"))
            .respond_with(OAuth(st.clone()))
            .mount(&server)
            .await;
        (server, ZaloDouble(st))
    }
}

/// The double's app, with Loa starting from the pair (`access`, `refresh`).
fn app(base_url: &str, access: &str, refresh: &str) -> loa::config::ZaloApp {
    loa::config::ZaloApp {
        app_id: APP_ID.into(),
        secret_key: Some(super::secret(SECRET_KEY)),
        secret_key_file: None,
        oa_secret_key: Some(super::secret(OA_SECRET)),
        oa_secret_key_file: None,
        access_token: Some(super::secret(access)),
        refresh_token: Some(super::secret(refresh)),
        oauth_url: format!("{base_url}/v4/oa/access_token"),
        timeout_seconds: 5,
    }
}

/// Config for a ZNS provider at `base_url` holding the pair (`access`, `refresh`).
pub fn zns_provider(cfg: &mut loa::config::Config, base_url: &str, access: &str, refresh: &str) {
    let kind = loa::config::ProviderKind::ZaloZns {
        app: app(base_url, access, refresh),
        base_url: base_url.into(),
        development: false,
        templates: [(TEMPLATE_ID.to_string(), template_params())].into(),
    };
    super::route(cfg, providers::Channel::ZaloZns, "zns", kind);
}

/// Config for a Zalo OA provider at `base_url`, same app as the ZNS one (so they share tokens).
pub fn oa_provider(cfg: &mut loa::config::Config, base_url: &str, access: &str, refresh: &str) {
    let kind = loa::config::ProviderKind::ZaloOa {
        app: app(base_url, access, refresh),
        base_url: base_url.into(),
    };
    super::route(cfg, providers::Channel::Zalo, "zalo", kind);
}
