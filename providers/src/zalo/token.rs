//! One OA's access token: refreshed before it expires and when Zalo says it is invalid, one refresh
//! at a time, and each new pair stored (replacing the single-use refresh token) before it is used.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use tokio::sync::Mutex;

use super::NumOrString;

/// Refresh this long before the access token expires, so no send races the expiry.
const EARLY: Duration = Duration::from_secs(300);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    /// Unix milliseconds; 0 when unknown (a token pasted in by an operator): used until Zalo refuses it.
    pub expires_at_ms: i64,
}

/// Where token pairs live (Loa's database). `replace` is a compare-and-swap on the refresh token, so
/// two instances never both spend the same single-use refresh token's successor.
#[async_trait::async_trait]
pub trait TokenStore: Send + Sync {
    async fn load(&self, app_id: &str) -> Result<Option<TokenPair>, String>;
    /// Stores `new` if the stored refresh token is still `old_refresh`; false if another instance
    /// replaced it first.
    async fn replace(
        &self,
        app_id: &str,
        old_refresh: &str,
        new: &TokenPair,
    ) -> Result<bool, String>;

    /// Takes the app's refresh lock for `for_ms` if the stored refresh token is still `refresh`:
    /// only the holder calls Zalo with it (Zalo honours a refresh token once, and a second call
    /// with it fails). A store used by one process only may keep the default.
    async fn lock_refresh(
        &self,
        _app_id: &str,
        _refresh: &str,
        _for_ms: i64,
    ) -> Result<bool, String> {
        Ok(true)
    }

    /// Gives the lock back after a refresh that did not reach Zalo or was refused.
    async fn unlock_refresh(&self, _app_id: &str) -> Result<(), String> {
        Ok(())
    }
}

#[derive(Clone, Debug)]
pub struct TokenSettings {
    pub app_id: String,
    pub secret_key: String,
    /// `https://oauth.zaloapp.com/v4/oa/access_token`
    pub oauth_url: String,
    pub timeout: Duration,
}

pub struct TokenManager {
    settings: TokenSettings,
    http: reqwest::Client,
    store: Arc<dyn TokenStore>,
    /// The pair in use; the lock also makes refreshes single-flight within this process.
    current: Mutex<Option<TokenPair>>,
}

#[derive(Deserialize)]
struct RefreshReply {
    access_token: Option<String>,
    refresh_token: Option<String>,
    expires_in: Option<NumOrString>,
    error: Option<NumOrString>,
    error_name: Option<String>,
    error_description: Option<String>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl TokenManager {
    pub fn new(settings: TokenSettings, store: Arc<dyn TokenStore>) -> Result<Self, String> {
        Ok(TokenManager {
            http: crate::http_client(settings.timeout)?,
            settings,
            store,
            current: Mutex::new(None),
        })
    }

    pub fn app_id(&self) -> &str {
        &self.settings.app_id
    }

    /// A usable access token, refreshing first if it is about to expire.
    pub async fn access_token(&self) -> Result<String, String> {
        let mut cur = self.current.lock().await;
        if cur.is_none() {
            *cur = self.store.load(&self.settings.app_id).await?;
        }
        let pair = cur
            .clone()
            .ok_or_else(|| format!("no Zalo token stored for app {}", self.settings.app_id))?;
        let expiring =
            pair.expires_at_ms > 0 && pair.expires_at_ms - (EARLY.as_millis() as i64) <= now_ms();
        if !expiring {
            return Ok(pair.access_token);
        }
        Ok(self.refresh_locked(&mut cur, pair).await?.access_token)
    }

    /// Zalo refused `stale` as invalid: refresh unless another task already did, and return the token
    /// to retry with.
    pub async fn refresh_after_rejection(&self, stale: &str) -> Result<String, String> {
        let mut cur = self.current.lock().await;
        // Another instance may have refreshed: the database is the truth.
        let stored = self.store.load(&self.settings.app_id).await?;
        if let Some(p) = &stored
            && p.access_token != stale
        {
            *cur = stored.clone();
            return Ok(p.access_token.clone());
        }
        let pair = stored
            .ok_or_else(|| format!("no Zalo token stored for app {}", self.settings.app_id))?;
        Ok(self.refresh_locked(&mut cur, pair).await?.access_token)
    }

    async fn refresh_locked(
        &self,
        cur: &mut Option<TokenPair>,
        old: TokenPair,
    ) -> Result<TokenPair, String> {
        // Across instances, only the holder of the database's refresh lock spends the token; the
        // others wait for the pair it stores. The lock outlasts one refresh call.
        let hold = self.settings.timeout + Duration::from_secs(5);
        if !self
            .store
            .lock_refresh(
                &self.settings.app_id,
                &old.refresh_token,
                hold.as_millis() as i64,
            )
            .await?
        {
            return self.await_other_refresh(cur, &old, hold).await;
        }
        let refreshed = self.call_refresh(cur, &old).await;
        if refreshed.is_err()
            && let Err(e) = self.store.unlock_refresh(&self.settings.app_id).await
        {
            tracing::warn!(app = %self.settings.app_id, error = %e, "Zalo refresh lock not released; it lapses by itself");
        }
        refreshed
    }

    /// Another instance holds the refresh lock: the new pair it stores is ours too. Polls the store
    /// until the refresh token changes, for as long as the lock can be held.
    async fn await_other_refresh(
        &self,
        cur: &mut Option<TokenPair>,
        old: &TokenPair,
        hold: Duration,
    ) -> Result<TokenPair, String> {
        let until = tokio::time::Instant::now() + hold;
        while tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if let Some(p) = self.store.load(&self.settings.app_id).await?
                && p.refresh_token != old.refresh_token
            {
                *cur = Some(p.clone());
                return Ok(p);
            }
        }
        Err("another instance's Zalo token refresh did not finish; trying again later".into())
    }

    async fn call_refresh(
        &self,
        cur: &mut Option<TokenPair>,
        old: &TokenPair,
    ) -> Result<TokenPair, String> {
        let form = [
            ("refresh_token", old.refresh_token.as_str()),
            ("app_id", self.settings.app_id.as_str()),
            ("grant_type", "refresh_token"),
        ];
        let resp = self
            .http
            .post(&self.settings.oauth_url)
            .header("secret_key", &self.settings.secret_key)
            .form(&form)
            .send()
            .await
            .map_err(|e| format!("token refresh failed: {e}"))?;
        let status = resp.status();
        let body: RefreshReply = resp
            .json()
            .await
            .map_err(|e| format!("token refresh answered {status} with an unreadable body: {e}"))?;
        let (Some(access), Some(refresh)) = (body.access_token, body.refresh_token) else {
            return Err(format!(
                "token refresh refused ({} {}): {}",
                body.error.and_then(|e| e.as_i64()).unwrap_or_default(),
                body.error_name.unwrap_or_default(),
                body.error_description.unwrap_or_default()
            ));
        };
        let expires_in = body.expires_in.and_then(|e| e.as_i64()).unwrap_or(0);
        let new = TokenPair {
            access_token: access,
            refresh_token: refresh,
            expires_at_ms: if expires_in > 0 {
                now_ms() + expires_in * 1000
            } else {
                0
            },
        };
        // The old refresh token is spent now: store the new pair before anything else.
        if !self
            .store
            .replace(&self.settings.app_id, &old.refresh_token, &new)
            .await?
        {
            // Another instance refreshed at the same moment with the same token; Zalo honours one.
            let stored = self.store.load(&self.settings.app_id).await?;
            *cur = stored.clone();
            return stored.ok_or_else(|| "Zalo token vanished during refresh".to_string());
        }
        tracing::info!(app = %self.settings.app_id, "Zalo access token refreshed");
        *cur = Some(new.clone());
        Ok(new)
    }
}
