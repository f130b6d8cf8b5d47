//! Logs at debug level (and trace for Loa's own code) hold no secret and no link that acts for a
//! person: webhook tokens, Facebook's verify token, report signatures, unsubscribe links, API tokens,
//! and no full phone number or email, even where a provider quotes one. The whole binary shares
//! one log subscriber, so this file holds one test.

mod common;

use std::sync::{Arc, Mutex};

use common::messenger_double::{VERIFY_TOKEN, messenger_provider};
use common::sms_doubles::{SPEEDSMS_HOOK, gateway_provider, refusing_gateway, speedsms_provider};
use common::*;
use reqwest::StatusCode;

/// Everything the subscriber writes, kept in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn debug_logs_hold_no_secret_no_acting_link_and_no_address() {
    let logs = Captured::default();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "debug,loa=trace,tower_http=trace",
        ))
        .with_writer(logs.clone())
        .with_ansi(false)
        .try_init()
        .expect("the only subscriber of this test binary");

    // A school's gateway refuses every parent, quoting their number; email takes over.
    let gateway = refusing_gateway().await;
    let refusing = spawn_app(|cfg, _| gateway_provider(cfg, &gateway.uri())).await;
    let c = run_parents_campaign(&refusing, 2, &["sms", "email"]).await;
    assert_eq!(refusing.deliveries(c).await.len(), 2);
    drop(refusing);

    // Providers whose webhooks take a token in the query.
    let app = spawn_app(|cfg, _| {
        speedsms_provider(cfg, "http://127.0.0.1:9");
        messenger_provider(cfg, "http://127.0.0.1:9");
    })
    .await;
    let c = run_parents_campaign(&app, 1, &["email"]).await;
    let parent = app.deliveries(c).await[0]["contact_id"]
        .as_i64()
        .expect("a parent");

    let plain = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", app.base);
    let st = plain
        .post(url(&format!("/webhooks/speedsms?token={SPEEDSMS_HOOK}")))
        .body(r#"{"type":"report","tranId":1,"phone":"84912000000","status":0}"#)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(st, StatusCode::OK);
    let st = plain
        .get(url(&format!(
            "/webhooks/facebook?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=42"
        )))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(st, StatusCode::OK);
    plain
        .get(url("/webhooks/gw?id=1&at=0.1&sig=c0ffee5ign4ture"))
        .send()
        .await
        .unwrap();
    // The unsubscribe link acts for the parent: neither its token nor the link may be logged.
    let link = app
        .state
        .links
        .unsubscribe(parent, providers::Channel::Email);
    let token = link
        .split("/u/")
        .nth(1)
        .and_then(|t| t.split('?').next())
        .expect("a token in the link")
        .to_string();
    let st = plain.get(&link).send().await.unwrap().status();
    assert_eq!(st, StatusCode::OK);
    plain.post(&link).send().await.unwrap();
    let (st, _) = app
        .call_as(
            &app.approver_token,
            reqwest::Method::GET,
            &format!("/api/v1/campaigns/{c}"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);

    let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).to_string();
    assert!(
        text.contains("/webhooks/speedsms") && text.contains("/u/"),
        "the request log is on at debug: {text}"
    );
    assert!(text.contains("send refused"), "the refusals are logged");
    let secrets = [
        SPEEDSMS_HOOK,
        VERIFY_TOKEN,
        "c0ffee5ign4ture",
        token.as_str(),
        link.as_str(),
        app.approver_token.as_str(),
        "84912000000",
        "0912000000",
        "ph0@example.vn",
        "ph1@example.vn",
    ];
    for s in secrets {
        assert!(!text.contains(s), "{s} appears in the logs");
    }
}
