//! Which provider carries each channel, with its rate limiter and SMS policy, built from the config.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use providers::email::{SmtpProvider, SmtpSettings};
use providers::esms::{EsmsProvider, EsmsSettings};
use providers::http_sms::{HttpSmsProvider, HttpSmsSettings};
use providers::kannel::{KannelProvider, KannelSettings};
use providers::messenger::{MessengerProvider, MessengerSettings};
use providers::sink::SinkProvider;
use providers::speedsms::{SpeedSmsProvider, SpeedSmsSettings};
use providers::zalo::oa::{OaProvider, OaSettings};
use providers::zalo::token::{TokenManager, TokenPair, TokenSettings};
use providers::zalo::zns::{ZnsProvider, ZnsSettings};
use providers::{Channel, Provider};

use super::limit::Limiter;
use super::tokens::StoreTokens;
use crate::clock::now_ms;
use crate::config::{Config, ProviderConfig, ProviderKind, Secret, ZaloApp, load_secret};
use crate::store::Store;

pub struct Route {
    pub provider: Arc<dyn Provider>,
    pub limiter: Option<Limiter>,
    pub unaccent: bool,
    pub max_segments: Option<u32>,
    /// The provider reports delivery to a signed `/webhooks/<name>` URL Loa hands it (Kannel, eSMS).
    pub wants_callback: bool,
    /// ZNS: each Zalo template id's parameters, as configured, for checking campaigns.
    pub zns_templates: BTreeMap<String, Vec<String>>,
}

#[derive(Default)]
pub struct Registry {
    routes: HashMap<Channel, Route>,
    /// Where sink providers write, to tell the user.
    pub sink_locations: Vec<(Channel, PathBuf)>,
    /// Provider name -> how its webhook authenticates.
    pub webhooks: HashMap<String, WebhookAuth>,
}

impl Registry {
    /// Every route's rate limiter (the heartbeat sets their shares).
    pub fn limiters(&self) -> impl Iterator<Item = &Limiter> {
        self.routes.values().filter_map(|r| r.limiter.as_ref())
    }

    pub async fn from_config(cfg: &Config, store: &Arc<dyn Store>) -> anyhow::Result<Registry> {
        let mut reg = Registry::default();
        let mut builder = Builder {
            store,
            zalo_tokens: HashMap::new(),
        };
        for (channel, name) in &cfg.channels {
            let pc = cfg.providers.get(name).with_context(|| {
                format!("channel {channel} names provider {name:?}, which is not configured")
            })?;
            let Built {
                provider,
                location,
                webhook,
            } = builder
                .build(name, pc)
                .await
                .with_context(|| format!("provider {name}"))?;
            if provider.channel() != *channel {
                anyhow::bail!(
                    "provider {name} carries {}, not {channel}",
                    provider.channel()
                );
            }
            if let Some(loc) = location {
                reg.sink_locations.push((*channel, loc));
            }
            if let Some(w) = webhook {
                reg.webhooks.insert(name.clone(), w);
            }
            reg.insert(
                *channel,
                Route {
                    wants_callback: matches!(
                        pc.kind,
                        ProviderKind::Kannel { .. } | ProviderKind::Esms { .. }
                    ),
                    provider,
                    limiter: Limiter::new(pc.rate_per_second, pc.burst),
                    unaccent: pc.unaccent,
                    max_segments: pc.max_segments,
                    zns_templates: match &pc.kind {
                        ProviderKind::ZaloZns { templates, .. } => templates.clone(),
                        _ => BTreeMap::new(),
                    },
                },
            );
        }
        Ok(reg)
    }

    pub fn insert(&mut self, channel: Channel, route: Route) {
        self.routes.insert(channel, route);
    }

    pub fn route(&self, c: Channel) -> Option<&Route> {
        self.routes.get(&c)
    }

    pub fn channels(&self) -> Vec<Channel> {
        let mut v: Vec<Channel> = self.routes.keys().copied().collect();
        v.sort();
        v
    }
}

/// How a provider's webhook (`/webhooks/<name>`) proves it is genuine. Not `Debug`: it holds secrets.
#[derive(Clone)]
pub enum WebhookAuth {
    /// Kannel: the dlr-url Loa handed out carries Loa's signature over the delivery id.
    Kannel,
    /// eSMS: the CallbackUrl carries Loa's signature; eSMS adds its own fields to it.
    Esms,
    /// Zalo: `X-ZEvent-Signature: mac=sha256(app_id + body + timestamp + OA secret key)`.
    Zalo { app_id: String, oa_secret: String },
    /// Facebook: `X-Hub-Signature-256` (HMAC-SHA256 with the app secret) and the verify handshake.
    Facebook {
        app_secret: String,
        verify_token: Option<String>,
    },
    /// SpeedSMS: a shared token in the query string (its reports carry no signature).
    SpeedSms { token: String },
}

/// Built providers share one token manager per Zalo app, so OA and ZNS never refresh concurrently.
struct Builder<'a> {
    store: &'a Arc<dyn Store>,
    zalo_tokens: HashMap<String, Arc<TokenManager>>,
}

struct Built {
    provider: Arc<dyn Provider>,
    location: Option<PathBuf>,
    webhook: Option<WebhookAuth>,
}

fn secret(
    inline: &Option<Secret>,
    file: &Option<PathBuf>,
    name: &str,
    what: &str,
) -> anyhow::Result<String> {
    load_secret(inline, file, name)?.with_context(|| format!("{what} (or {what}_file) is required"))
}

impl Builder<'_> {
    /// A Zalo app's token manager (one per app id, whichever providers name it; the config's pair
    /// seeds the database on first run only) and its webhook authentication, if an OA secret is set.
    async fn zalo_app(
        &mut self,
        name: &str,
        app: &ZaloApp,
    ) -> anyhow::Result<(Arc<TokenManager>, Option<WebhookAuth>, Duration)> {
        let timeout = Duration::from_secs(app.timeout_seconds);
        if let (Some(a), Some(r)) = (&app.access_token, &app.refresh_token) {
            let pair = TokenPair {
                access_token: a.expose().to_string(),
                refresh_token: r.expose().to_string(),
                expires_at_ms: 0,
            };
            self.store
                .seed_zalo_token(&app.app_id, &pair, now_ms())
                .await?;
        }
        let webhook =
            load_secret(&app.oa_secret_key, &app.oa_secret_key_file, name)?.map(|oa_secret| {
                WebhookAuth::Zalo {
                    app_id: app.app_id.clone(),
                    oa_secret,
                }
            });
        if let Some(t) = self.zalo_tokens.get(&app.app_id) {
            return Ok((t.clone(), webhook, timeout));
        }
        let tokens = Arc::new(
            TokenManager::new(
                TokenSettings {
                    app_id: app.app_id.clone(),
                    secret_key: secret(&app.secret_key, &app.secret_key_file, name, "secret_key")?,
                    oauth_url: app.oauth_url.clone(),
                    timeout,
                },
                Arc::new(StoreTokens(self.store.clone())),
            )
            .map_err(anyhow::Error::msg)?,
        );
        self.zalo_tokens.insert(app.app_id.clone(), tokens.clone());
        Ok((tokens, webhook, timeout))
    }

    async fn build(&mut self, name: &str, pc: &ProviderConfig) -> anyhow::Result<Built> {
        let plain = |provider: Arc<dyn Provider>| Built {
            provider,
            location: None,
            webhook: None,
        };
        Ok(match &pc.kind {
            ProviderKind::ZaloZns {
                app,
                base_url,
                development,
                templates: _,
            } => {
                let (tokens, webhook, timeout) = self.zalo_app(name, app).await?;
                let settings = ZnsSettings {
                    base_url: base_url.clone(),
                    development: *development,
                    timeout,
                };
                Built {
                    provider: Arc::new(
                        ZnsProvider::new(name, settings, tokens).map_err(anyhow::Error::msg)?,
                    ),
                    location: None,
                    webhook,
                }
            }
            ProviderKind::ZaloOa { app, base_url } => {
                let (tokens, webhook, timeout) = self.zalo_app(name, app).await?;
                let settings = OaSettings {
                    base_url: base_url.clone(),
                    timeout,
                };
                Built {
                    provider: Arc::new(
                        OaProvider::new(name, settings, tokens).map_err(anyhow::Error::msg)?,
                    ),
                    location: None,
                    webhook,
                }
            }
            ProviderKind::Facebook {
                page_token,
                page_token_file,
                app_secret,
                app_secret_file,
                verify_token,
                graph_version,
                base_url,
                timeout_seconds,
            } => {
                let settings = MessengerSettings {
                    base_url: base_url.clone(),
                    graph_version: graph_version.clone(),
                    page_token: secret(page_token, page_token_file, name, "page_token")?,
                    timeout: Duration::from_secs(*timeout_seconds),
                };
                Built {
                    provider: Arc::new(
                        MessengerProvider::new(name, settings).map_err(anyhow::Error::msg)?,
                    ),
                    location: None,
                    webhook: load_secret(app_secret, app_secret_file, name)?.map(|app_secret| {
                        WebhookAuth::Facebook {
                            app_secret,
                            verify_token: verify_token.as_ref().map(|v| v.expose().to_string()),
                        }
                    }),
                }
            }
            ProviderKind::Esms {
                api_key,
                secret_key,
                secret_key_file,
                brandname,
                sandbox,
                base_url,
                timeout_seconds,
            } => {
                let settings = EsmsSettings {
                    base_url: base_url.clone(),
                    api_key: api_key.clone(),
                    secret_key: secret(secret_key, secret_key_file, name, "secret_key")?,
                    brandname: brandname.clone(),
                    sandbox: *sandbox,
                    timeout: Duration::from_secs(*timeout_seconds),
                };
                Built {
                    provider: Arc::new(
                        EsmsProvider::new(name, settings).map_err(anyhow::Error::msg)?,
                    ),
                    location: None,
                    webhook: Some(WebhookAuth::Esms),
                }
            }
            ProviderKind::Speedsms {
                token,
                token_file,
                sms_type,
                sender,
                webhook_token,
                base_url,
                timeout_seconds,
            } => {
                if *sms_type == 3 && sender.is_none() {
                    anyhow::bail!("sms_type 3 (brandname) needs a sender");
                }
                let settings = SpeedSmsSettings {
                    base_url: base_url.clone(),
                    token: secret(token, token_file, name, "token")?,
                    sms_type: *sms_type,
                    sender: sender.clone(),
                    timeout: Duration::from_secs(*timeout_seconds),
                };
                Built {
                    provider: Arc::new(
                        SpeedSmsProvider::new(name, settings).map_err(anyhow::Error::msg)?,
                    ),
                    location: None,
                    webhook: webhook_token.as_ref().map(|t| WebhookAuth::SpeedSms {
                        token: t.expose().to_string(),
                    }),
                }
            }
            ProviderKind::HttpSms {
                method,
                url,
                headers,
                body,
                content_type,
                success_pointer,
                success_value,
                id_pointer,
                timeout_seconds,
            } => {
                let settings = HttpSmsSettings {
                    method: method.clone(),
                    url: url.clone(),
                    headers: headers
                        .iter()
                        .map(|(k, v)| (k.clone(), v.expose().to_string()))
                        .collect(),
                    body: body.clone(),
                    content_type: content_type.clone(),
                    success_pointer: success_pointer.clone(),
                    success_value: success_value.clone(),
                    id_pointer: id_pointer.clone(),
                    timeout: Duration::from_secs(*timeout_seconds),
                };
                plain(Arc::new(
                    HttpSmsProvider::new(name, settings).map_err(anyhow::Error::msg)?,
                ))
            }
            ProviderKind::Smtp {
                host,
                port,
                tls,
                username,
                password,
                password_file,
                from,
                pool_size,
                timeout_seconds,
            } => {
                let settings = SmtpSettings {
                    host: host.clone(),
                    port: *port,
                    tls: *tls,
                    username: username.clone(),
                    password: load_secret(password, password_file, name)?,
                    from: from.clone(),
                    pool_size: *pool_size,
                    timeout: Duration::from_secs(*timeout_seconds),
                };
                plain(Arc::new(
                    SmtpProvider::new(name, &settings).map_err(anyhow::Error::msg)?,
                ))
            }
            ProviderKind::Kannel {
                base_url,
                username,
                password,
                password_file,
                from,
                smsc,
                timeout_seconds,
            } => {
                let settings = KannelSettings {
                    base_url: base_url.clone(),
                    username: username.clone(),
                    password: load_secret(password, password_file, name)?.unwrap_or_default(),
                    from: from.clone(),
                    smsc: smsc.clone(),
                    timeout: Duration::from_secs(*timeout_seconds),
                };
                Built {
                    provider: Arc::new(
                        KannelProvider::new(name, settings).map_err(anyhow::Error::msg)?,
                    ),
                    location: None,
                    webhook: Some(WebhookAuth::Kannel),
                }
            }
            ProviderKind::Sink {
                dir,
                channel,
                simulate_failure_per_mille,
            } => {
                let sink =
                    SinkProvider::new(name, *channel, dir.clone(), *simulate_failure_per_mille)
                        .map_err(anyhow::Error::msg)?;
                let loc = sink.location();
                Built {
                    provider: Arc::new(sink),
                    location: Some(loc),
                    webhook: None,
                }
            }
        })
    }
}
