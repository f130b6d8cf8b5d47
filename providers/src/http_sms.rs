//! A generic HTTP SMS gateway described entirely in config: method, URL and body as minijinja
//! templates over the message, headers, and where in the JSON reply success and the message id are.
//! A school's local aggregator is added without code.

use std::collections::BTreeMap;
use std::time::Duration;

use minijinja::{Environment, UndefinedBehavior, context};

use crate::{
    Accepted, Channel, Message, Provider, SendError, domestic_phone, http_client, wire_phone,
};

#[derive(Clone, Debug)]
pub struct HttpSmsSettings {
    /// `GET` or `POST` (any method reqwest knows).
    pub method: String,
    /// A template: `https://gw.example.vn/send?to={{ to }}&text={{ text|urlencode }}`.
    pub url: String,
    pub headers: BTreeMap<String, String>,
    /// A template for the request body (none for GET gateways): `{"to":"{{ to }}","text":{{ text|tojson }}}`.
    pub body: Option<String>,
    pub content_type: String,
    /// JSON pointer into the reply (`/status`) and the value there that means success (`ok`); without
    /// a pointer any 2xx is success.
    pub success_pointer: Option<String>,
    pub success_value: Option<String>,
    /// JSON pointer to the gateway's message id (`/data/id`).
    pub id_pointer: Option<String>,
    pub timeout: Duration,
}

pub struct HttpSmsProvider {
    name: String,
    method: reqwest::Method,
    env: Environment<'static>,
    s: HttpSmsSettings,
    http: reqwest::Client,
}

impl HttpSmsProvider {
    /// Compiles the templates now, so a typo in the config stops the daemon at start, not at send.
    pub fn new(name: &str, s: HttpSmsSettings) -> Result<Self, String> {
        let method = reqwest::Method::from_bytes(s.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| format!("unknown HTTP method {:?}", s.method))?;
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.add_template_owned("url", s.url.clone())
            .map_err(|e| format!("url template: {e}"))?;
        if let Some(b) = &s.body {
            env.add_template_owned("body", b.clone())
                .map_err(|e| format!("body template: {e}"))?;
        }
        for p in [&s.success_pointer, &s.id_pointer].into_iter().flatten() {
            if !p.is_empty() && !p.starts_with('/') {
                return Err(format!(
                    "{p:?} is not a JSON pointer (it must start with '/')"
                ));
            }
        }
        Ok(HttpSmsProvider {
            name: name.into(),
            method,
            env,
            http: http_client(s.timeout)?,
            s,
        })
    }

    fn render(&self, which: &str, msg: &Message) -> Result<String, SendError> {
        let tpl = self
            .env
            .get_template(which)
            .map_err(|e| SendError::campaign(format!("{which} template: {e}")))?;
        tpl.render(context! {
            to => wire_phone(&msg.to),
            to_domestic => domestic_phone(&msg.to),
            text => &msg.text,
            id => &msg.id,
            unicode => msg.sms.is_some_and(|s| s.ucs2),
            callback_url => &msg.callback_url,
        })
        // A template that cannot render one message cannot render any: the config is wrong.
        .map_err(|e| SendError::campaign(format!("{which} template: {e}")))
    }
}

/// A JSON value as the text an operator would write in `success_value`.
fn as_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[async_trait::async_trait]
impl Provider for HttpSmsProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn channel(&self) -> Channel {
        Channel::Sms
    }

    async fn send(&self, msg: &Message) -> Result<Accepted, SendError> {
        let url = self.render("url", msg)?;
        let mut req = self.http.request(self.method.clone(), url.trim());
        for (k, v) in &self.s.headers {
            req = req.header(k, v);
        }
        if self.s.body.is_some() {
            req = req
                .header(reqwest::header::CONTENT_TYPE, &self.s.content_type)
                .body(self.render("body", msg)?);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| crate::unreachable(&self.name, e))?;
        if let Some(e) = crate::throttled(&self.name, &resp) {
            return Err(e);
        }
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let snippet: String = text.chars().take(200).collect();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(SendError::transient(format!(
                "{} answered HTTP {status}",
                self.name
            )));
        }
        if status.as_u16() == 401 || status.as_u16() == 403 {
            return Err(SendError::campaign(format!(
                "{} refused our credentials (HTTP {status}): {snippet}",
                self.name
            )));
        }
        if !status.is_success() {
            return Err(SendError::permanent(format!(
                "{} refused (HTTP {status}): {snippet}",
                self.name
            )));
        }
        let json: Option<serde_json::Value> = serde_json::from_str(&text).ok();
        if let Some(ptr) = &self.s.success_pointer {
            let got = json.as_ref().and_then(|j| j.pointer(ptr)).map(as_text);
            let want = self.s.success_value.as_deref().unwrap_or("true");
            if got.as_deref() != Some(want) {
                return Err(SendError::permanent(format!(
                    "{} did not accept the message: {snippet}",
                    self.name
                )));
            }
        }
        let id = self
            .s
            .id_pointer
            .as_ref()
            .and_then(|p| json.as_ref()?.pointer(p))
            .map(as_text);
        Ok(Accepted {
            provider_message_id: id,
            ..Accepted::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> HttpSmsSettings {
        HttpSmsSettings {
            method: "post".into(),
            url: "http://gw/send?to={{ to }}&t={{ text|urlencode }}".into(),
            headers: BTreeMap::new(),
            body: Some(
                r#"{"to":"{{ to_domestic }}","text":{{ text|tojson }},"ref":"{{ id }}"}"#.into(),
            ),
            content_type: "application/json".into(),
            success_pointer: Some("/status".into()),
            success_value: Some("ok".into()),
            id_pointer: Some("/data/id".into()),
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn templates_fill_and_escape() {
        let p = HttpSmsProvider::new("gw", settings()).unwrap();
        let msg = Message::new(
            "42".into(),
            Channel::Sms,
            "+84912345678".into(),
            "Họp \"phụ huynh\" & lớp".into(),
        );
        let body: serde_json::Value =
            serde_json::from_str(&p.render("body", &msg).unwrap()).unwrap();
        assert_eq!(body["to"], "0912345678");
        assert_eq!(body["text"], "Họp \"phụ huynh\" & lớp");
        assert_eq!(body["ref"], "42");
        let url = p.render("url", &msg).unwrap();
        assert!(
            url.starts_with("http://gw/send?to=84912345678&t=H%E1%BB%8Dp"),
            "{url}"
        );
        assert!(
            !url.contains(' ') && !url.contains('&') || url.matches('&').count() == 1,
            "{url}"
        );
    }

    #[test]
    fn bad_config_is_refused_at_start() {
        let mut s = settings();
        s.body = Some("{{ text ".into());
        assert!(HttpSmsProvider::new("gw", s).is_err());
        let mut s = settings();
        s.id_pointer = Some("data.id".into());
        assert!(HttpSmsProvider::new("gw", s).is_err());
    }
}
