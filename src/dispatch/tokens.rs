//! Zalo token pairs kept in Loa's store, for the providers' token manager (the database is what makes
//! a single-use refresh token survive restarts and stay single-use across instances).

use std::sync::Arc;

use providers::zalo::token::{TokenPair, TokenStore};

use crate::clock::now_ms;
use crate::store::Store;

pub struct StoreTokens(pub Arc<dyn Store>);

#[async_trait::async_trait]
impl TokenStore for StoreTokens {
    async fn load(&self, app_id: &str) -> Result<Option<TokenPair>, String> {
        self.0.zalo_token(app_id).await.map_err(|e| e.to_string())
    }

    async fn replace(
        &self,
        app_id: &str,
        old_refresh: &str,
        new: &TokenPair,
    ) -> Result<bool, String> {
        self.0
            .replace_zalo_token(app_id, old_refresh, new, now_ms())
            .await
            .map_err(|e| e.to_string())
    }

    async fn lock_refresh(&self, app_id: &str, refresh: &str, for_ms: i64) -> Result<bool, String> {
        let now = now_ms();
        self.0
            .lock_zalo_refresh(app_id, refresh, now, now + for_ms)
            .await
            .map_err(|e| e.to_string())
    }

    async fn unlock_refresh(&self, app_id: &str) -> Result<(), String> {
        self.0
            .unlock_zalo_refresh(app_id)
            .await
            .map_err(|e| e.to_string())
    }
}
