//! Email over SMTP: UTF-8 subject and body, RFC 8058 one-click List-Unsubscribe headers, the delivery id
//! as Message-ID, SMTP replies classified 4xx/5xx, over a pool of at most `pool_size` connections that
//! Loa opens itself (TCP_NODELAY set) and reuses.
//!
//! Why not lettre's `AsyncSmtpTransport` and its pool (as until 2026-12-01): lettre 0.11.23, the newest
//! on crates.io, writes a message's body and its closing `\r\n.\r\n` as two writes on a socket without
//! TCP_NODELAY, so Nagle holds the 5-byte terminator until the server's delayed ACK, about 40 ms a
//! message (fixed upstream in lettre PR #1159, not released); its `pool_size` caps idle connections,
//! not open ones (68-115 were open at once for `pool_size = 4`); and it sends a NOOP before every
//! reuse, one more round trip per message. Here lettre still speaks SMTP (`AsyncSmtpConnection`: EHLO,
//! STARTTLS, AUTH, the commands, dot-stuffing), but on a `TcpStream` Loa connects and configures,
//! inside a pool Loa bounds. Not pipelining (RFC 2920): lettre's connection has no way to write several
//! commands before reading, and the 4 round trips of a message are what `smtp-source`, the machine's
//! own ceiling, does too.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
#[allow(deprecated)]
// lettre's own stream type, used here only to run its TLS handshake (see ImplicitTls)
use lettre::transport::smtp::client::AsyncNetworkStream;
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::{Accepted, Channel, Message, Provider, SendError};

/// How the SMTP connection is secured.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain connection, upgraded with STARTTLS (required).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on loopback or in tests.
    None,
}

#[derive(Clone, Debug)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: Option<String>,
    pub password: Option<String>,
    /// `"Trường TH Mỹ Phú <no-reply@myphu.edu.vn>"`.
    pub from: String,
    /// The most SMTP connections Loa opens to this server at once, and so the most messages in
    /// flight to it: relays limit connections per client.
    pub pool_size: u32,
    /// For one message's whole SMTP conversation (connecting included), not for waiting for a
    /// connection of the pool.
    pub timeout: Duration,
}

/// A connection idle for longer than this is asked NOOP before it carries a message: the server may
/// have closed it meanwhile. One busy with a campaign is never idle that long, so it pays no round trip.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(2);
/// A connection idle for longer than this is closed instead of reused (lettre's pool default);
/// servers drop idle clients after a few minutes (Postfix: 300 s).
const MAX_IDLE: Duration = Duration::from_secs(60);

pub struct SmtpProvider {
    name: String,
    from: Mailbox,
    pool: SmtpPool,
}

/// At most `slots` connections open: a connection is made only by a sender holding a slot when no
/// idle one is left, so open = (connections held by senders) + idle <= slots.
struct SmtpPool {
    host: String,
    port: u16,
    tls: TlsMode,
    /// Built once: the certificate store is loaded here, not per connection.
    tls_params: Option<TlsParameters>,
    credentials: Option<Credentials>,
    hello: ClientId,
    timeout: Duration,
    slots: Semaphore,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
    /// The server offers PIPELINING (RFC 2920), as its last EHLO said: MAIL, RCPT and DATA then go
    /// in one write and their replies are read together, two round trips a message instead of four.
    pipelining: AtomicBool,
}

impl SmtpProvider {
    pub fn new(name: &str, s: &SmtpSettings) -> Result<Self, String> {
        let from: Mailbox = s
            .from
            .parse()
            .map_err(|e| format!("invalid from address {:?}: {e}", s.from))?;
        let tls_params = match s.tls {
            TlsMode::None => None,
            TlsMode::Starttls | TlsMode::Tls => Some(
                TlsParameters::new(s.host.clone()).map_err(|e| format!("smtp {}: {e}", s.host))?,
            ),
        };
        let credentials = match (&s.username, &s.password) {
            (Some(user), Some(pass)) => Some(Credentials::new(user.clone(), pass.clone())),
            _ => None,
        };
        Ok(SmtpProvider {
            name: name.to_string(),
            from,
            pool: SmtpPool {
                host: s.host.clone(),
                port: s.port,
                tls: s.tls,
                tls_params,
                credentials,
                hello: ClientId::default(),
                timeout: s.timeout,
                slots: Semaphore::new(s.pool_size.max(1) as usize),
                idle: Mutex::new(Vec::new()),
                pipelining: AtomicBool::new(false),
            },
        })
    }
}

#[async_trait::async_trait]
impl Provider for SmtpProvider {
    fn name(&self) -> &str {
        &self.name
    }
    fn channel(&self) -> Channel {
        Channel::Email
    }
    async fn send(&self, msg: &Message) -> Result<Accepted, SendError> {
        let email = build_email(msg, &self.from)?;
        let resp = self.pool.send(email.envelope(), &email.formatted()).await?;
        Ok(Accepted {
            provider_message_id: resp.message().next().map(|l| l.to_string()),
            ..Accepted::default()
        })
    }
}

impl SmtpPool {
    async fn send(&self, envelope: &Envelope, body: &[u8]) -> Result<Response, SendError> {
        // The slot is held for the whole conversation: it is what bounds the connections.
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| SendError::transient("smtp: provider closed"))?;
        let conversation = async {
            if let Some(mut conn) = self.take_idle().await {
                match transaction(&mut conn, envelope, body, self.pipelines()).await {
                    Ok(resp) => {
                        self.put_idle(conn);
                        return Ok(resp);
                    }
                    // The server closed a reused connection (idle timeout, messages-per-session
                    // limit) before it took anything of this message: a fresh one carries it, and no
                    // attempt is spent on the pool's history. A 5xx to MAIL is an answer, not that.
                    Err(Failed::BeforeMail(e)) if !e.is_permanent() => conn.abort().await,
                    Err(e) => {
                        conn.abort().await;
                        return Err(e.classify());
                    }
                }
            }
            let mut conn = self.connect().await?;
            match transaction(&mut conn, envelope, body, self.pipelines()).await {
                Ok(resp) => {
                    self.put_idle(conn);
                    Ok(resp)
                }
                Err(e) => {
                    conn.abort().await;
                    Err(e.classify())
                }
            }
        };
        match tokio::time::timeout(self.timeout, conversation).await {
            Ok(r) => r,
            // Dropping the conversation drops its connection: it is in an unknown state.
            Err(_) => Err(SendError::transient(format!(
                "smtp: no answer within {} s",
                self.timeout.as_secs()
            ))),
        }
    }

    fn pipelines(&self) -> bool {
        self.pipelining.load(Ordering::Relaxed)
    }

    /// The most recently used idle connection, checked with NOOP if it has waited long.
    async fn take_idle(&self) -> Option<AsyncSmtpConnection> {
        loop {
            let (mut conn, since) = self.idle.lock().ok()?.pop()?;
            let idle = since.elapsed();
            if idle > MAX_IDLE || (idle > CHECK_AFTER_IDLE && !conn.test_connected().await) {
                conn.abort().await;
                continue;
            }
            return Some(conn);
        }
    }

    fn put_idle(&self, conn: AsyncSmtpConnection) {
        if conn.has_broken() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            idle.push((conn, Instant::now()));
        }
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let unreachable = |e: io::Error| {
            SendError::transient(format!("smtp: cannot connect to {}: {e}", self.host))
        };
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(unreachable)?;
        // The reason for connecting by hand: without it each message waits for a delayed ACK.
        tcp.set_nodelay(true).map_err(unreachable)?;
        let smtp = |e: lettre::transport::smtp::Error| SendError::transient(format!("smtp: {e}"));
        let mut conn = match (&self.tls_params, self.tls) {
            (Some(params), TlsMode::Tls) => {
                #[allow(deprecated)]
                let mut stream = AsyncNetworkStream::use_existing_tokio1(Box::new(tcp));
                stream.upgrade_tls(params.clone()).await.map_err(smtp)?;
                AsyncSmtpConnection::connect_with_transport(
                    Box::new(ImplicitTls(stream)),
                    &self.hello,
                )
                .await
                .map_err(smtp)?
            }
            (params, _) => {
                let mut conn =
                    AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello)
                        .await
                        .map_err(smtp)?;
                if let Some(params) = params {
                    // Required, as lettre's `starttls_relay` did: refused when not offered.
                    conn.starttls(params.clone(), &self.hello)
                        .await
                        .map_err(smtp)?;
                }
                conn
            }
        };
        if let Some(c) = &self.credentials
            && let Err(e) = conn.auth(DEFAULT_MECHANISMS, c).await
        {
            conn.abort().await;
            return Err(classify_smtp(&e));
        }
        // lettre parses EHLO into the few extensions it knows, PIPELINING not among them: ask once
        // more (one round trip per connection, and connections are reused) and read the lines.
        match conn.command(Ehlo::new(self.hello.clone())).await {
            Ok(r) => {
                let offered = r.message().any(|l| {
                    l.split_ascii_whitespace()
                        .next()
                        .is_some_and(|k| k.eq_ignore_ascii_case("PIPELINING"))
                });
                self.pipelining.store(offered, Ordering::Relaxed);
            }
            Err(e) => {
                conn.abort().await;
                return Err(classify_smtp(&e));
            }
        }
        Ok(conn)
    }
}

/// Where a message's SMTP transaction failed: before the server took anything of it (MAIL refused or
/// the connection already gone), later, or before a command was sent (the server cannot take it).
enum Failed {
    BeforeMail(lettre::transport::smtp::Error),
    During(lettre::transport::smtp::Error),
    Unsupported(&'static str),
}

impl Failed {
    fn classify(&self) -> SendError {
        match self {
            Failed::BeforeMail(e) | Failed::During(e) => classify_smtp(e),
            // Transient as lettre's client errors were; the server may be reconfigured.
            Failed::Unsupported(why) => SendError::transient(format!("smtp: {why}")),
        }
    }
}

/// MAIL, RCPT, DATA and the message, as lettre's `AsyncSmtpConnection::send` does (same SMTPUTF8 and
/// 8BITMIME rules), split so that a failure of MAIL can be told apart. With `pipelining` the three
/// commands are one write and their replies are read in order (RFC 2920 section 3.1: DATA ends the
/// group); any refusal in the group leaves the connection to be dropped by the caller, so replies
/// left unread never meet the next message.
async fn transaction(
    conn: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    body: &[u8],
    pipelining: bool,
) -> Result<Response, Failed> {
    let mut options = vec![];
    let non_ascii = envelope
        .from()
        .into_iter()
        .chain(envelope.to())
        .any(|a| !AsRef::<str>::as_ref(a).is_ascii());
    if non_ascii {
        if !conn.server_info().supports_feature(Extension::SmtpUtfEight) {
            return Err(Failed::Unsupported(
                "address is not ASCII and the server lacks SMTPUTF8",
            ));
        }
        options.push(MailParameter::SmtpUtfEight);
    }
    if !body.is_ascii() {
        if !conn.server_info().supports_feature(Extension::EightBitMime) {
            return Err(Failed::Unsupported(
                "message is not ASCII and the server lacks 8BITMIME",
            ));
        }
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    let mail = Mail::new(envelope.from().cloned(), options);
    if pipelining {
        let mut group = mail.to_string();
        for to in envelope.to() {
            group.push_str(&Rcpt::new(to.clone(), vec![]).to_string());
        }
        group.push_str(&Data.to_string());
        // `command` writes its argument as it is, then reads one reply: MAIL's.
        conn.command(group).await.map_err(Failed::BeforeMail)?;
        for _ in envelope.to() {
            conn.read_response().await.map_err(Failed::During)?;
        }
        conn.read_response().await.map_err(Failed::During)?;
        return conn.message(body).await.map_err(Failed::During);
    }
    conn.command(mail).await.map_err(Failed::BeforeMail)?;
    for to in envelope.to() {
        conn.command(Rcpt::new(to.clone(), vec![]))
            .await
            .map_err(Failed::During)?;
    }
    conn.command(Data).await.map_err(Failed::During)?;
    conn.message(body).await.map_err(Failed::During)
}

/// lettre's TLS stream (its own rustls setup and certificate store, as `relay()` used) over Loa's
/// TCP socket, handed back to lettre as the transport of a connection: lettre can wrap a stream it is
/// given, but only opens TLS from the first byte (port 465) on sockets it connected itself.
#[derive(Debug)]
#[allow(deprecated)]
struct ImplicitTls(AsyncNetworkStream);

impl AsyncRead for ImplicitTls {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let unfilled = buf.initialize_unfilled();
        match futures_io::AsyncRead::poll_read(Pin::new(&mut self.0), cx, unfilled) {
            Poll::Ready(Ok(n)) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for ImplicitTls {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        futures_io::AsyncWrite::poll_write(Pin::new(&mut self.0), cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures_io::AsyncWrite::poll_flush(Pin::new(&mut self.0), cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures_io::AsyncWrite::poll_close(Pin::new(&mut self.0), cx)
    }
}

impl AsyncTokioStream for ImplicitTls {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.peer_addr()
    }
}

/// 5xx is the server's final word about this recipient; anything else (4xx, timeouts, lost connections,
/// TLS trouble) may pass on a later attempt. Servers quote the recipient in their replies ("550 5.1.1
/// <ph@example.vn>: Recipient address rejected") and the reason is logged, so addresses are masked.
fn classify_smtp(e: &lettre::transport::smtp::Error) -> SendError {
    let reason = format!("smtp: {}", crate::mask_emails(&e.to_string()));
    if e.is_permanent() {
        SendError::permanent(reason)
    } else {
        SendError::transient(reason)
    }
}

/// The domain part of the sender, used to make the Message-ID globally unique.
fn sender_domain(from: &Mailbox) -> &str {
    from.email.domain()
}

/// Builds the RFC 5322 message. Shared by the SMTP provider and the `.eml` sink so that what the demo
/// writes is exactly what SMTP would carry.
pub fn build_email(msg: &Message, from: &Mailbox) -> Result<lettre::Message, SendError> {
    let to: Mailbox = msg
        .to
        .parse()
        .map_err(|e| SendError::permanent(format!("invalid email address: {e}")))?;
    let mut builder = lettre::Message::builder()
        .from(from.clone())
        .to(to)
        .subject(msg.subject.clone().unwrap_or_default())
        .message_id(Some(format!("<{}@{}>", msg.id, sender_domain(from))));
    if let Some(u) = &msg.unsubscribe {
        let value = match &u.mailto {
            Some(m) => format!("<{}>, <mailto:{}>", u.url, m),
            None => format!("<{}>", u.url),
        };
        builder = builder
            .header(ListUnsubscribe(value))
            .header(ListUnsubscribePost("List-Unsubscribe=One-Click".into()));
    }
    let built = match &msg.html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(
            msg.text.clone(),
            html.clone(),
        )),
        None => builder
            .header(ContentType::TEXT_PLAIN)
            .body(msg.text.clone()),
    };
    built.map_err(|e| SendError::permanent(format!("cannot build email: {e}")))
}

/// `List-Unsubscribe` (RFC 2369); lettre has no typed header for it.
#[derive(Clone, Debug)]
struct ListUnsubscribe(String);

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribe(s.to_string()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// `List-Unsubscribe-Post` (RFC 8058 one-click).
#[derive(Clone, Debug)]
struct ListUnsubscribePost(String);

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribePost(s.to_string()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Unsubscribe;

    fn message() -> Message {
        Message {
            subject: Some("Mẹo an toàn trên mạng tuần này".into()),
            unsubscribe: Some(Unsubscribe {
                url: "http://127.0.0.1:8080/u/abc?c=email".into(),
                mailto: Some("unsubscribe@myphu.edu.vn".into()),
            }),
            ..Message::new(
                "42".into(),
                Channel::Email,
                "phuhuynh@example.vn".into(),
                "Kính gửi phụ huynh em Nguyễn Văn An".into(),
            )
        }
    }

    #[test]
    fn email_carries_message_id_and_one_click_headers() {
        let from: Mailbox = "Trường TH Mỹ Phú <no-reply@myphu.edu.vn>".parse().unwrap();
        let raw = String::from_utf8(build_email(&message(), &from).unwrap().formatted()).unwrap();
        // Long headers are folded (RFC 5322); compare them unfolded.
        let raw = raw.replace("\r\n ", " ");
        assert!(raw.contains("Message-ID: <42@myphu.edu.vn>"), "{raw}");
        assert!(raw.contains("List-Unsubscribe: <http://127.0.0.1:8080/u/abc?c=email>, <mailto:unsubscribe@myphu.edu.vn>"), "{raw}");
        assert!(
            raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
            "{raw}"
        );
        // The UTF-8 subject must be RFC 2047 encoded, never raw 8-bit in a header.
        assert!(raw.contains("Subject: =?utf-8?"), "{raw}");
    }

    #[test]
    fn addresses_in_server_replies_are_masked() {
        assert_eq!(
            crate::mask_emails(
                "permanent error (550): 5.1.1 <phuhuynh@example.vn>: Recipient address rejected"
            ),
            "permanent error (550): 5.1.1 <ph***@example.vn>: Recipient address rejected"
        );
        assert_eq!(crate::mask_emails("no address here"), "no address here");
    }

    #[test]
    fn bad_address_is_permanent() {
        let from: Mailbox = "a@b.vn".parse().unwrap();
        let mut m = message();
        m.to = "not an address".into();
        assert!(matches!(
            build_email(&m, &from),
            Err(SendError::Permanent { .. })
        ));
    }
}
