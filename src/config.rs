//! One `Config` struct: the TOML file (`loa.toml`) with `LOA__SECTION__KEY` environment overrides.
//! Secrets come from the file, the environment or a `*_file` path, and never appear in Debug output.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use providers::Channel;
use providers::email::TlsMode;
use serde::Deserialize;

/// A secret string: deserialises like a string, prints as `***`.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub database: DatabaseConfig,
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub dispatch: DispatchConfig,
    #[serde(default)]
    pub schedule: ScheduleConfig,
    #[serde(default)]
    pub web: WebConfig,
    #[serde(default)]
    pub prices: Prices,
    /// Channel -> name of the provider that carries it. A channel not listed is not available.
    #[serde(default)]
    pub channels: BTreeMap<Channel, String>,
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
}

/// The staff pages' logins.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// A session ends after this long without a request.
    #[serde(default = "default_idle_minutes")]
    pub session_idle_minutes: u32,
    /// A session ends this long after the login, however busy.
    #[serde(default = "default_session_hours")]
    pub session_max_hours: u32,
    /// Behind a reverse proxy the peer is the proxy: take the client's address from the last entry
    /// of `X-Forwarded-For` (the one the proxy appended) to throttle failed logins per address.
    /// Only for a proxy that sets it; otherwise a client could name any address.
    #[serde(default)]
    pub trust_forwarded_for: bool,
}

fn default_idle_minutes() -> u32 {
    60
}

fn default_session_hours() -> u32 {
    12
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            session_idle_minutes: default_idle_minutes(),
            session_max_hours: default_session_hours(),
            trust_forwarded_for: false,
        }
    }
}

/// What a message costs, for the preview before submission (Vietnamese đồng; 0 = free or unknown).
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    /// Per SMS segment (a 2-part SMS costs twice), unless the carrier has its own price.
    #[serde(default)]
    pub sms_segment: f64,
    /// Per SMS segment by network: viettel, vinaphone, mobifone, vietnamobile, gmobile, itel, reddi.
    #[serde(default)]
    pub sms_segment_by_carrier: BTreeMap<String, f64>,
    /// Per ZNS message delivered.
    #[serde(default)]
    pub zalo_zns: f64,
    /// Per Zalo OA message (consultation messages are free within the window; transaction ones may
    /// not be).
    #[serde(default)]
    pub zalo: f64,
    #[serde(default)]
    pub messenger: f64,
    #[serde(default)]
    pub email: f64,
}

impl Prices {
    pub fn sms_segment_for(&self, carrier: Option<&str>) -> f64 {
        carrier
            .and_then(|c| self.sms_segment_by_carrier.get(c))
            .copied()
            .unwrap_or(self.sms_segment)
    }

    pub fn per_message(&self, c: Channel) -> f64 {
        match c {
            Channel::ZaloZns => self.zalo_zns,
            Channel::Zalo => self.zalo,
            Channel::Messenger => self.messenger,
            Channel::Email => self.email,
            Channel::Sms => 0.0,
        }
    }
}

/// Recurring campaigns and quiet hours.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// A slot missed while the daemon was down still runs if it is at most this old; older ones are
    /// recorded as skipped.
    #[serde(default = "d_grace_hours")]
    pub grace_hours: u32,
    /// Quiet hours of nodes that set none, local time ("21:00-07:00"; "" = none).
    #[serde(default = "d_quiet")]
    pub quiet_hours: String,
    /// Hold email in quiet hours too (it is read when the parent chooses, so by default it is not).
    #[serde(default)]
    pub hold_email: bool,
}

fn d_grace_hours() -> u32 {
    6
}

fn d_quiet() -> String {
    "21:00-07:00".into()
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            grace_hours: d_grace_hours(),
            quiet_hours: d_quiet(),
            hold_email: false,
        }
    }
}

impl ScheduleConfig {
    pub fn grace_ms(&self) -> i64 {
        i64::from(self.grace_hours) * 3_600_000
    }

    /// The default quiet hours, `None` when switched off; an unreadable value is an error at start.
    pub fn default_quiet(&self) -> anyhow::Result<Option<crate::domain::schedule::QuietHours>> {
        if self.quiet_hours.trim().is_empty() {
            return Ok(None);
        }
        self.quiet_hours
            .parse()
            .map(Some)
            .map_err(|e| anyhow::anyhow!("schedule.quiet_hours: {e}"))
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    #[serde(default = "default_db_url")]
    pub url: String,
    /// PostgreSQL's password, kept out of the URL: inline (or `LOA__DATABASE__PASSWORD`), or read
    /// from a file at start (a systemd credential, a Kubernetes secret). libpq's `PGPASSFILE` works too.
    #[serde(default)]
    pub password: Option<Secret>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &crate::store::display_url(&self.url))
            .field("password", &self.password)
            .field("password_file", &self.password_file)
            .finish()
    }
}

impl DatabaseConfig {
    /// The password from `password` or `password_file`, if either is set.
    pub fn password(&self) -> anyhow::Result<Option<String>> {
        load_secret(
            &self.password,
            &self.password_file,
            "database.password_file",
        )
    }
}

fn default_db_url() -> String {
    "sqlite://loa-data/loa.db".into()
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: default_db_url(),
            password: None,
            password_file: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Base URL the outside world reaches Loa at: unsubscribe links and delivery-report callbacks.
    /// Defaults to `http://<listen>`.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Address for the `mailto:` form of List-Unsubscribe, if the school has one.
    #[serde(default)]
    pub unsubscribe_mailto: Option<String>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            public_url: None,
            unsubscribe_mailto: None,
        }
    }
}

impl ServerConfig {
    pub fn public_url(&self, bound: SocketAddr) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{bound}"))
            .trim_end_matches('/')
            .to_string()
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchConfig {
    /// Deliveries claimed per transaction.
    #[serde(default = "d_batch")]
    pub batch_size: usize,
    /// Sends in flight at once, across providers.
    #[serde(default = "d_concurrency")]
    pub concurrency: usize,
    /// How long a claim holds a delivery before another instance may take it.
    #[serde(default = "d_lease")]
    pub lease_seconds: u64,
    /// Attempts per channel before a transient failure counts as permanent.
    #[serde(default = "d_attempts")]
    pub max_attempts: i64,
    #[serde(default = "d_retry_base")]
    pub retry_base_ms: u64,
    #[serde(default = "d_retry_max")]
    pub retry_max_ms: u64,
    /// Backstop poll when nothing wakes the dispatcher.
    #[serde(default = "d_poll")]
    pub poll_interval_ms: u64,
    /// Time given to in-flight sends on shutdown; their leases cover anything cut off.
    #[serde(default = "d_grace")]
    pub shutdown_grace_seconds: u64,
}

fn d_batch() -> usize {
    256
}
fn d_concurrency() -> usize {
    64
}
fn d_lease() -> u64 {
    60
}
fn d_attempts() -> i64 {
    5
}
fn d_retry_base() -> u64 {
    2_000
}
fn d_retry_max() -> u64 {
    3_600_000
}
fn d_poll() -> u64 {
    1_000
}
fn d_grace() -> u64 {
    20
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            batch_size: d_batch(),
            concurrency: d_concurrency(),
            lease_seconds: d_lease(),
            max_attempts: d_attempts(),
            retry_base_ms: d_retry_base(),
            retry_max_ms: d_retry_max(),
            poll_interval_ms: d_poll(),
            shutdown_grace_seconds: d_grace(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct ProviderConfig {
    #[serde(flatten)]
    pub kind: ProviderKind,
    /// Sustained sends per second allowed by the provider contract (absent = unlimited).
    #[serde(default)]
    pub rate_per_second: Option<u32>,
    /// The most sends allowed in any 100 ms window (default: the sustained rate's share, i.e. smooth
    /// pacing). Set it to what the provider tolerates in a short spike.
    #[serde(default)]
    pub burst: Option<u32>,
    /// SMS only: strip Vietnamese diacritics (brandname contracts often require "không dấu").
    #[serde(default)]
    pub unaccent: bool,
    /// SMS only: refuse texts longer than this many parts, when the campaign is created.
    #[serde(default)]
    pub max_segments: Option<u32>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProviderKind {
    Smtp {
        host: String,
        #[serde(default = "d_smtp_port")]
        port: u16,
        #[serde(default)]
        tls: TlsMode,
        #[serde(default)]
        username: Option<String>,
        #[serde(default)]
        password: Option<Secret>,
        #[serde(default)]
        password_file: Option<PathBuf>,
        from: String,
        #[serde(default = "d_pool")]
        pool_size: u32,
        #[serde(default = "d_timeout")]
        timeout_seconds: u64,
    },
    Kannel {
        base_url: String,
        username: String,
        #[serde(default)]
        password: Option<Secret>,
        #[serde(default)]
        password_file: Option<PathBuf>,
        #[serde(default)]
        from: Option<String>,
        #[serde(default)]
        smsc: Option<String>,
        #[serde(default = "d_timeout")]
        timeout_seconds: u64,
    },
    /// Zalo ZNS template messages by phone number.
    ZaloZns {
        #[serde(flatten)]
        app: ZaloApp,
        #[serde(default = "d_zns_url")]
        base_url: String,
        /// Send with `"mode":"development"` (Zalo's sandbox).
        #[serde(default)]
        development: bool,
        /// The parameters of each Zalo template id, so a campaign whose template leaves one unmapped
        /// is refused when it is created.
        #[serde(default)]
        templates: std::collections::BTreeMap<String, Vec<String>>,
    },
    /// Zalo Official Account messages to followers (consultation or transaction).
    ZaloOa {
        #[serde(flatten)]
        app: ZaloApp,
        #[serde(default = "d_zalo_oa_url")]
        base_url: String,
    },
    /// Facebook Messenger Send API for one Page.
    Facebook {
        #[serde(default)]
        page_token: Option<Secret>,
        #[serde(default)]
        page_token_file: Option<PathBuf>,
        /// Signs webhook bodies (`X-Hub-Signature-256`).
        #[serde(default)]
        app_secret: Option<Secret>,
        #[serde(default)]
        app_secret_file: Option<PathBuf>,
        /// What Facebook must present in the webhook verification handshake.
        #[serde(default)]
        verify_token: Option<Secret>,
        #[serde(default = "d_graph_version")]
        graph_version: String,
        #[serde(default = "d_graph_url")]
        base_url: String,
        #[serde(default = "d_timeout")]
        timeout_seconds: u64,
    },
    /// eSMS.vn brandname SMS.
    Esms {
        api_key: String,
        #[serde(default)]
        secret_key: Option<Secret>,
        #[serde(default)]
        secret_key_file: Option<PathBuf>,
        brandname: String,
        #[serde(default)]
        sandbox: bool,
        #[serde(default = "d_esms_url")]
        base_url: String,
        #[serde(default = "d_timeout")]
        timeout_seconds: u64,
    },
    /// SpeedSMS brandname SMS.
    Speedsms {
        #[serde(default)]
        token: Option<Secret>,
        #[serde(default)]
        token_file: Option<PathBuf>,
        /// 2 customer care, 3 brandname (needs `sender`), 4 SpeedSMS's default brandname.
        #[serde(default = "d_speedsms_type")]
        sms_type: u8,
        #[serde(default)]
        sender: Option<String>,
        /// Must appear as `?token=` on delivery reports posted to `/webhooks/<name>`.
        #[serde(default)]
        webhook_token: Option<Secret>,
        #[serde(default = "d_speedsms_url")]
        base_url: String,
        #[serde(default = "d_timeout")]
        timeout_seconds: u64,
    },
    /// Any HTTP SMS gateway, described in config.
    HttpSms {
        #[serde(default = "d_post")]
        method: String,
        url: String,
        /// Header values are secrets (they often carry a key).
        #[serde(default)]
        headers: BTreeMap<String, Secret>,
        #[serde(default)]
        body: Option<String>,
        #[serde(default = "d_json_type")]
        content_type: String,
        #[serde(default)]
        success_pointer: Option<String>,
        #[serde(default)]
        success_value: Option<String>,
        #[serde(default)]
        id_pointer: Option<String>,
        #[serde(default = "d_timeout")]
        timeout_seconds: u64,
    },
    /// Writes messages to files (development and the demo).
    Sink {
        dir: PathBuf,
        channel: Channel,
        #[serde(default)]
        simulate_failure_per_mille: u32,
    },
}

/// The Zalo app (OA) both Zalo providers speak for: its keys, its first token pair, and where tokens
/// are refreshed. OA and ZNS providers naming the same `app_id` share one token pair.
#[derive(Clone, Debug, Deserialize)]
pub struct ZaloApp {
    pub app_id: String,
    #[serde(default)]
    pub secret_key: Option<Secret>,
    #[serde(default)]
    pub secret_key_file: Option<PathBuf>,
    /// Verifies webhook signatures (Zalo's "OA secret key", shown with the webhook settings).
    #[serde(default)]
    pub oa_secret_key: Option<Secret>,
    #[serde(default)]
    pub oa_secret_key_file: Option<PathBuf>,
    /// First token pair; after the first refresh the database holds the newest pair.
    #[serde(default)]
    pub access_token: Option<Secret>,
    #[serde(default)]
    pub refresh_token: Option<Secret>,
    #[serde(default = "d_zalo_oauth_url")]
    pub oauth_url: String,
    #[serde(default = "d_timeout")]
    pub timeout_seconds: u64,
}

fn d_zns_url() -> String {
    "https://business.openapi.zalo.me".into()
}
fn d_zalo_oa_url() -> String {
    "https://openapi.zalo.me".into()
}
fn d_graph_version() -> String {
    "v25.0".into()
}
fn d_graph_url() -> String {
    "https://graph.facebook.com".into()
}
fn d_esms_url() -> String {
    "https://rest.esms.vn".into()
}
fn d_speedsms_url() -> String {
    "https://api.speedsms.vn".into()
}
fn d_speedsms_type() -> u8 {
    3
}
fn d_post() -> String {
    "POST".into()
}
fn d_json_type() -> String {
    "application/json".into()
}
fn d_zalo_oauth_url() -> String {
    "https://oauth.zaloapp.com/v4/oa/access_token".into()
}
fn d_smtp_port() -> u16 {
    587
}
fn d_pool() -> u32 {
    4
}
fn d_timeout() -> u64 {
    30
}

/// Reads a secret given inline or as a file path (trailing newline dropped).
pub fn load_secret(
    inline: &Option<Secret>,
    file: &Option<PathBuf>,
    what: &str,
) -> anyhow::Result<Option<String>> {
    match (inline, file) {
        (Some(s), _) => Ok(Some(s.expose().to_string())),
        (None, Some(path)) => {
            let s = std::fs::read_to_string(path).map_err(|e| {
                anyhow::anyhow!("{what}: cannot read secret file {}: {e}", path.display())
            })?;
            Ok(Some(s.trim_end_matches(['\n', '\r']).to_string()))
        }
        (None, None) => Ok(None),
    }
}

impl ProviderKind {
    /// How long one send may wait for the provider's answer, in seconds (None: local, no wait).
    pub fn timeout_seconds(&self) -> Option<u64> {
        match self {
            ProviderKind::Smtp {
                timeout_seconds, ..
            }
            | ProviderKind::Kannel {
                timeout_seconds, ..
            }
            | ProviderKind::Facebook {
                timeout_seconds, ..
            }
            | ProviderKind::Esms {
                timeout_seconds, ..
            }
            | ProviderKind::Speedsms {
                timeout_seconds, ..
            }
            | ProviderKind::HttpSms {
                timeout_seconds, ..
            } => Some(*timeout_seconds),
            ProviderKind::ZaloZns { app, .. } | ProviderKind::ZaloOa { app, .. } => {
                Some(app.timeout_seconds)
            }
            ProviderKind::Sink { .. } => None,
        }
    }
}

impl Config {
    /// Refuses settings that cannot work together, naming the keys.
    pub fn check(&self) -> anyhow::Result<()> {
        let lease = self.dispatch.lease_seconds;
        for (name, p) in &self.providers {
            if let Some(t) = p.kind.timeout_seconds()
                && lease <= t
            {
                anyhow::bail!(
                    "dispatch.lease_seconds ({lease}) must be longer than providers.{name}.timeout_seconds ({t}): \
                     a send still waiting for the provider would otherwise look abandoned to another instance"
                );
            }
        }
        if self.dispatch.concurrency == 0 {
            anyhow::bail!("dispatch.concurrency must be at least 1");
        }
        if self.web.session_idle_minutes == 0 || self.web.session_max_hours == 0 {
            anyhow::bail!("web.session_idle_minutes and web.session_max_hours must be at least 1");
        }
        Ok(())
    }

    /// Loads `path` (if any) then `LOA__...` environment overrides. Without a file and without any
    /// provider configured, every channel goes to a local sink under `loa-data/outbox`, and says so.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let mut fig = Figment::new();
        if let Some(p) = path {
            if !p.exists() {
                anyhow::bail!("config file {} does not exist", p.display());
            }
            fig = fig.merge(Toml::file(p));
        }
        fig = fig.merge(Env::prefixed("LOA__").split("__"));
        let mut cfg: Config = fig
            .extract()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        if path.is_none() && cfg.providers.is_empty() && cfg.channels.is_empty() {
            cfg.use_sinks(Path::new("loa-data/outbox"), 0);
        }
        Ok(cfg)
    }

    /// Routes every channel to a file sink under `dir`.
    pub fn use_sinks(&mut self, dir: &Path, zalo_failure_per_mille: u32) {
        for c in Channel::ALL {
            let name = format!("{c}-sink");
            let fail = if c == Channel::Zalo {
                zalo_failure_per_mille
            } else {
                0
            };
            self.providers.insert(
                name.clone(),
                ProviderConfig {
                    kind: ProviderKind::Sink {
                        dir: dir.to_path_buf(),
                        channel: c,
                        simulate_failure_per_mille: fail,
                    },
                    rate_per_second: None,
                    burst: None,
                    // As most brandname SMS contracts require: text without diacritics, fewer parts.
                    unaccent: c == Channel::Sms,
                    max_segments: if c == Channel::Sms { Some(5) } else { None },
                },
            );
            self.channels.insert(c, name);
        }
    }

    pub fn embedded() -> Config {
        Config {
            database: DatabaseConfig::default(),
            server: ServerConfig::default(),
            dispatch: DispatchConfig::default(),
            schedule: ScheduleConfig::default(),
            web: WebConfig::default(),
            prices: Prices::default(),
            channels: BTreeMap::new(),
            providers: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
// figment's Jail closures must return figment::Error, which is large; that is its API, not ours.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn parses_example_and_hides_secrets() {
        let cfg: Config = Figment::new()
            .merge(Toml::file(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/loa.example.toml"
            )))
            .extract()
            .unwrap();
        assert_eq!(
            cfg.channels.get(&Channel::Sms).map(String::as_str),
            Some("kannel")
        );
        let kannel = &cfg.providers["kannel"];
        assert!(kannel.unaccent);
        assert!(matches!(
            cfg.providers["local_gateway"].kind,
            ProviderKind::HttpSms { .. }
        ));
        assert!(matches!(
            cfg.providers["zalo"].kind,
            ProviderKind::ZaloOa { .. }
        ));
        let dbg = format!("{cfg:?}");
        assert!(!dbg.contains("change-me"), "secrets must not print: {dbg}");
    }

    #[test]
    fn env_overrides_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("loa.toml", "[dispatch]\nconcurrency = 3\n")?;
            jail.set_env("LOA__DISPATCH__CONCURRENCY", "9");
            let cfg = Config::load(Some(Path::new("loa.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(cfg.dispatch.concurrency, 9);
            assert!(
                cfg.providers.is_empty(),
                "a config file never gets silent sinks"
            );
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_errors() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("loa.toml", "[dispatch]\nconcurency = 3\n")?;
            assert!(Config::load(Some(Path::new("loa.toml"))).is_err());
            Ok(())
        });
    }
}
