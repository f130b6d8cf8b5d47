//! Which provider carries each channel, with its rate limiter and SMS policy, built from the config.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use providers::email::{SmtpProvider, SmtpSettings};
use providers::kannel::{KannelProvider, KannelSettings};
use providers::sink::SinkProvider;
use providers::zalo::token::{TokenManager, TokenPair, TokenSettings};
use providers::zalo::zns::{ZnsProvider, ZnsSettings};
use providers::{Channel, Provider};

use super::limit::Limiter;
use super::tokens::StoreTokens;
use crate::clock::now_ms;
use crate::config::{Config, ProviderConfig, ProviderKind, load_secret};
use crate::store::Store;

pub struct Route {
    pub provider: Arc<dyn Provider>,
    pub limiter: Option<Limiter>,
    pub unaccent: bool,
    pub max_segments: Option<u32>,
    /// The provider reports delivery to `/webhooks/<name>` (Kannel DLR).
    pub wants_callback: bool,
    /// ZNS: each Zalo template id's parameters, as configured, for checking campaigns.
    pub zns_templates: BTreeMap<String, Vec<String>>,
}

#[derive(Default)]
pub struct Registry {
    routes: HashMap<Channel, Route>,
    /// Where sink providers write, to tell the user.
    pub sink_locations: Vec<(Channel, PathBuf)>,
}

impl Registry {
    pub async fn from_config(cfg: &Config, store: &Arc<dyn Store>) -> anyhow::Result<Registry> {
        let mut reg = Registry::default();
        for (channel, name) in &cfg.channels {
            let pc = cfg.providers.get(name).with_context(|| {
                format!("channel {channel} names provider {name:?}, which is not configured")
            })?;
            let (provider, location) = build(name, pc, store)
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
            reg.insert(
                *channel,
                Route {
                    wants_callback: matches!(pc.kind, ProviderKind::Kannel { .. }),
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

async fn build(
    name: &str,
    pc: &ProviderConfig,
    store: &Arc<dyn Store>,
) -> anyhow::Result<(Arc<dyn Provider>, Option<PathBuf>)> {
    Ok(match &pc.kind {
        ProviderKind::ZaloZns {
            app_id,
            secret_key,
            secret_key_file,
            access_token,
            refresh_token,
            base_url,
            oauth_url,
            development,
            templates: _,
            timeout_seconds,
        } => {
            if let (Some(a), Some(r)) = (access_token, refresh_token) {
                let pair = TokenPair {
                    access_token: a.expose().to_string(),
                    refresh_token: r.expose().to_string(),
                    expires_at_ms: 0,
                };
                store.seed_zalo_token(app_id, &pair, now_ms()).await?;
            }
            let timeout = Duration::from_secs(*timeout_seconds);
            let tokens = TokenManager::new(
                TokenSettings {
                    app_id: app_id.clone(),
                    secret_key: load_secret(secret_key, secret_key_file, name)?
                        .context("secret_key (or secret_key_file) is required")?,
                    oauth_url: oauth_url.clone(),
                    timeout,
                },
                Arc::new(StoreTokens(store.clone())),
            )
            .map_err(anyhow::Error::msg)?;
            let settings = ZnsSettings {
                base_url: base_url.clone(),
                development: *development,
                timeout,
            };
            (
                Arc::new(
                    ZnsProvider::new(name, settings, Arc::new(tokens))
                        .map_err(anyhow::Error::msg)?,
                ),
                None,
            )
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
            (
                Arc::new(SmtpProvider::new(name, &settings).map_err(anyhow::Error::msg)?),
                None,
            )
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
            (
                Arc::new(KannelProvider::new(name, settings).map_err(anyhow::Error::msg)?),
                None,
            )
        }
        ProviderKind::Sink {
            dir,
            channel,
            simulate_failure_per_mille,
        } => {
            let sink = SinkProvider::new(name, *channel, dir.clone(), *simulate_failure_per_mille)
                .map_err(anyhow::Error::msg)?;
            let loc = sink.location();
            (Arc::new(sink), Some(loc))
        }
    })
}
