//! Which provider carries each channel, with its rate limiter and SMS policy, built from the config.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use providers::email::{SmtpProvider, SmtpSettings};
use providers::kannel::{KannelProvider, KannelSettings};
use providers::sink::SinkProvider;
use providers::{Channel, Provider};

use super::limit::Limiter;
use crate::config::{Config, ProviderConfig, ProviderKind, load_secret};

pub struct Route {
    pub provider: Arc<dyn Provider>,
    pub limiter: Option<Limiter>,
    pub unaccent: bool,
    pub max_segments: Option<u32>,
    /// The provider reports delivery to `/webhooks/<name>` (Kannel DLR).
    pub wants_callback: bool,
}

#[derive(Default)]
pub struct Registry {
    routes: HashMap<Channel, Route>,
    /// Where sink providers write, to tell the user.
    pub sink_locations: Vec<(Channel, PathBuf)>,
}

impl Registry {
    pub fn from_config(cfg: &Config) -> anyhow::Result<Registry> {
        let mut reg = Registry::default();
        for (channel, name) in &cfg.channels {
            let pc = cfg.providers.get(name).with_context(|| {
                format!("channel {channel} names provider {name:?}, which is not configured")
            })?;
            let (provider, location) =
                build(name, pc).with_context(|| format!("provider {name}"))?;
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

fn build(name: &str, pc: &ProviderConfig) -> anyhow::Result<(Arc<dyn Provider>, Option<PathBuf>)> {
    Ok(match &pc.kind {
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
