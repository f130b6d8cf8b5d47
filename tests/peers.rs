//! Against real servers: email through a real SMTP server (aiosmtpd), SMS through a real Kannel with
//! its fake SMSC, including the delivery reports Kannel calls back with.

mod common;

use std::time::Duration;

use common::kannel_double::{kannel_provider, wrong_kannel_password};
use common::peers::*;
use common::*;
use loa::config::{ProviderConfig, ProviderKind};
use mail_parser::MessageParser;
use providers::Channel;
use providers::email::TlsMode;
use reqwest::StatusCode;

fn smtp_provider(cfg: &mut loa::config::Config, port: u16) {
    cfg.providers.insert(
        "smtp".into(),
        ProviderConfig {
            kind: ProviderKind::Smtp {
                host: "127.0.0.1".into(),
                port,
                tls: TlsMode::None,
                username: None,
                password: None,
                password_file: None,
                from: "Trường Tiểu học Mỹ Phú <no-reply@myphu.edu.vn>".into(),
                pool_size: 2,
                timeout_seconds: 5,
            },
            rate_per_second: None,
            burst: None,
            unaccent: false,
            max_segments: None,
        },
    );
    cfg.channels.insert(Channel::Email, "smtp".into());
    cfg.server.unsubscribe_mailto = Some("huy-dang-ky@myphu.edu.vn".into());
}

#[tokio::test]
async fn email_arrives_at_a_real_smtp_server_with_utf8_and_one_click_unsubscribe() {
    if !have_aiosmtpd() {
        return;
    }
    let smtp_dir = tempfile::tempdir().unwrap();
    let (_smtp, port, maildir) = start_smtp(smtp_dir.path());
    let app = spawn_app(|cfg, _| smtp_provider(cfg, port)).await;
    let t = tree(&app).await;
    let parents = parents_with_children(&app, &t, 3).await;
    let tpl = template(&app, t.school).await;
    let c = campaign(&app, t.school, tpl, &["parent"], &["email"]).await;
    app.start(c).await;
    app.wait_done(c).await;
    let ds = app.deliveries(c).await;
    assert!(
        ds.iter()
            .all(|d| d["state"] == "sent" && d["channel"] == "email"),
        "{ds:?}"
    );

    let files: Vec<_> = std::fs::read_dir(maildir.join("new"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 3, "one message per parent");
    let mut seen_ids = Vec::new();
    for f in &files {
        let raw = std::fs::read(f).unwrap();
        let m = MessageParser::default().parse(&raw).unwrap();
        assert_eq!(
            m.subject(),
            Some("Mẹo an toàn trên mạng - Trường Tiểu học Mỹ Phú")
        );
        let to = m
            .to()
            .unwrap()
            .first()
            .unwrap()
            .address()
            .unwrap()
            .to_string();
        let i: usize = to
            .trim_start_matches("ph")
            .trim_end_matches("@example.vn")
            .parse()
            .unwrap();
        let body = m.body_text(0).unwrap();
        assert!(
            body.contains(&format!("Kính gửi phụ huynh em Học Sinh {i} (1A)")),
            "{body}"
        );
        assert_eq!(
            m.from().unwrap().first().unwrap().name(),
            Some("Trường Tiểu học Mỹ Phú")
        );
        let raw_text = String::from_utf8_lossy(&raw);
        assert!(
            raw_text.to_lowercase().contains("charset=utf-8"),
            "{raw_text}"
        );
        let lu = m.header_raw("List-Unsubscribe").unwrap().trim().to_string();
        assert!(
            lu.contains(&format!("<{}/u/", app.base))
                && lu.ends_with("<mailto:huy-dang-ky@myphu.edu.vn>"),
            "{lu}"
        );
        assert_eq!(
            m.header_raw("List-Unsubscribe-Post").unwrap().trim(),
            "List-Unsubscribe=One-Click"
        );
        let mid = m.message_id().unwrap().to_string();
        seen_ids.push(mid.trim_end_matches("@myphu.edu.vn").to_string());

        if i == 0 {
            // RFC 8058 one-click, exactly as a mail client sends it.
            let url = lu.trim_start_matches('<').split('>').next().unwrap();
            let r = app
                .http
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body("List-Unsubscribe=One-Click")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            let (_, contact) = app.get(&format!("/api/v1/contacts/{}", parents[0])).await;
            assert_eq!(contact["opted_out"], serde_json::json!(["email"]));
        }
    }
    // The Message-ID carries the delivery id: the idempotency key for email.
    let mut expected: Vec<String> = ds.iter().map(|d| d["id"].to_string()).collect();
    expected.sort();
    seen_ids.sort();
    assert_eq!(seen_ids, expected);
    app.stop().await;
}

/// Issue 14 point 6: lettre's pool capped idle connections, not open ones, so 60 sends at once opened
/// about 60 connections to a relay that allows a few per client. Loa must open at most `pool_size`
/// (here 3) and carry every message over them.
#[tokio::test]
async fn email_never_opens_more_smtp_connections_than_pool_size_and_reuses_them() {
    if !have_smtp_sink() {
        return;
    }
    let smtp_dir = tempfile::tempdir().unwrap();
    let (_sink, sink_port, dump) = start_smtp_sink(smtp_dir.path());
    let counter = ConnCounter::start(sink_port).await;
    let port = counter.port;
    let app = spawn_app(|cfg, _| {
        smtp_provider(cfg, port);
        if let Some(ProviderConfig {
            kind: ProviderKind::Smtp { pool_size, .. },
            ..
        }) = cfg.providers.get_mut("smtp")
        {
            *pool_size = 3;
        }
        // Far more sends in flight than connections allowed.
        cfg.dispatch.concurrency = 64;
    })
    .await;
    let n = 60;
    let c = run_parents_campaign(&app, n, &["email"]).await;
    let ds = app.deliveries(c).await;
    assert!(
        ds.iter()
            .all(|d| d["state"] == "sent" && d["channel"] == "email"),
        "{ds:?}"
    );
    assert_eq!(
        std::fs::read_dir(&dump).unwrap().count(),
        n,
        "one file per message"
    );
    assert!(
        counter.peak() <= 3,
        "{} SMTP connections were open at once, pool_size is 3",
        counter.peak()
    );
    assert!(
        counter.total() <= 3,
        "{} connections were made for {n} messages: they are not reused",
        counter.total()
    );
    assert!(counter.open() <= 3);
    app.stop().await;
}

/// smtp-sink offers PIPELINING, so MAIL, RCPT and DATA go in one write: every message arrives whole,
/// each under its own Message-ID.
#[tokio::test]
async fn pipelined_emails_arrive_whole_at_a_real_smtp_sink() {
    if !have_smtp_sink() {
        return;
    }
    let smtp_dir = tempfile::tempdir().unwrap();
    let (_sink, port, dump) = start_smtp_sink(smtp_dir.path());
    let app = spawn_app(|cfg, _| smtp_provider(cfg, port)).await;
    let n = 12;
    let c = run_parents_campaign(&app, n, &["email"]).await;
    let ds = app.deliveries(c).await;
    assert!(ds.iter().all(|d| d["state"] == "sent"), "{ds:?}");
    let mut ids = std::collections::HashSet::new();
    for f in std::fs::read_dir(&dump).unwrap() {
        let raw = std::fs::read_to_string(f.unwrap().path()).unwrap();
        let m = mail_parser::MessageParser::default()
            .parse(raw.as_bytes())
            .expect("a whole message");
        assert!(m.subject().is_some_and(|s| !s.is_empty()), "{raw}");
        assert!(
            m.body_text(0).is_some_and(|b| b.contains("Kính gửi")),
            "{raw}"
        );
        ids.insert(m.message_id().unwrap_or_default().to_string());
    }
    assert_eq!(
        ids.len(),
        n,
        "one file per message, each its own Message-ID"
    );
    app.stop().await;
}

/// A refusal inside a pipelined group (5xx to RCPT) is read as the server's final word for that
/// person: they move on to their next channel, and the connection's unread replies never meet the
/// next message.
#[tokio::test]
async fn a_refused_rcpt_in_a_pipelined_group_moves_people_on() {
    if !have_smtp_sink() {
        return;
    }
    let smtp_dir = tempfile::tempdir().unwrap();
    let (_sink, port, _) = start_smtp_sink_with(smtp_dir.path(), &["-f", "RCPT"]);
    let app = spawn_app(|cfg, _| smtp_provider(cfg, port)).await;
    let n = 5;
    let c = run_parents_campaign(&app, n, &["email", "sms"]).await;
    let ds = app.deliveries(c).await;
    for d in &ds {
        assert_eq!(d["channel"], "sms", "{d}");
        assert!(d["reason"].as_str().unwrap_or("").contains("email"), "{d}");
    }
    assert_eq!(ds.len(), n);
    app.stop().await;
}

#[tokio::test]
async fn an_unreachable_smtp_server_is_retried_then_the_next_channel_is_used() {
    let port = free_port(); // nothing listens here
    let app = spawn_app(|cfg, _| {
        smtp_provider(cfg, port);
        cfg.dispatch.max_attempts = 2;
    })
    .await;
    let c = run_parents_campaign(&app, 1, &["email", "sms"]).await;
    let d = &app.deliveries(c).await[0];
    assert_eq!(
        (d["state"].as_str(), d["channel"].as_str()),
        (Some("delivered"), Some("sms")),
        "{d}"
    );
    assert!(
        d["reason"].as_str().unwrap().starts_with("email: smtp"),
        "{d}"
    );
    app.stop().await;
}

#[tokio::test]
async fn sms_through_a_real_kannel_with_delivery_reports() {
    if !have_kannel() {
        return;
    }
    let kdir = tempfile::tempdir().unwrap();
    let kannel = start_kannel(kdir.path());
    let base = format!("http://127.0.0.1:{}", kannel.sendsms_port);
    let app = spawn_app(|cfg, _| kannel_provider(cfg, &base, Some(50), Some(10))).await;
    let t = tree(&app).await;
    let n = 20;
    parents_with_children(&app, &t, n).await;
    let tpl = template(&app, t.school).await;
    let c = campaign(&app, t.school, tpl, &["parent"], &["sms"]).await;
    app.start(c).await;
    app.wait_done(c).await;
    // Kannel's fake SMSC reports type 8 (SMSC) then type 1 (phone): every delivery ends delivered.
    let ds = wait_for(Duration::from_secs(30), || async {
        let ds = app.deliveries(c).await;
        ds.iter().all(|d| d["state"] == "delivered").then_some(ds)
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "delivery reports did not arrive: {:?}",
            futures::executor::block_on(app.deliveries(c))
        )
    });
    assert_eq!(ds.len(), n);
    let log = std::fs::read_to_string(&kannel.fakesmsc_log).unwrap();
    let got: Vec<&str> = log.lines().filter(|l| l.contains("Got message")).collect();
    assert_eq!(got.len(), n, "{log}");
    assert!(
        log.contains("PH em Hoc Sinh 7: khong chia se mat khau cua con."),
        "unaccented text reached the SMSC: {log}"
    );
    assert!(log.contains("84912000007"), "{log}");
    app.stop().await;
}

#[tokio::test]
async fn a_real_kannel_refusing_our_credentials_sends_people_to_the_next_channel() {
    if !have_kannel() {
        return;
    }
    let kdir = tempfile::tempdir().unwrap();
    let kannel = start_kannel(kdir.path());
    let base = format!("http://127.0.0.1:{}", kannel.sendsms_port);
    let app = spawn_app(|cfg, _| {
        kannel_provider(cfg, &base, None, None);
        wrong_kannel_password(cfg);
    })
    .await;
    let c = run_parents_campaign(&app, 2, &["sms", "email"]).await;
    for d in app.deliveries(c).await {
        assert_eq!(
            (d["state"].as_str(), d["channel"].as_str()),
            (Some("delivered"), Some("email")),
            "{d}"
        );
        assert!(
            d["reason"]
                .as_str()
                .unwrap()
                .contains("kannel refused (403)"),
            "{d}"
        );
    }
    app.stop().await;
}
