//! SQLite side of what providers tell Loa after a send: receipts, watermarks, stored webhook events, Zalo follow state and the Zalo token pair.

use super::super::*;

#[async_trait::async_trait]
impl ReceiptStore for SqliteStore {
    async fn load_for_receipt(&self, id: i64, at: Option<AttemptRef>) -> Result<Option<Claimed>> {
        let row = sqlx::query(&format!(
            "SELECT {CLAIMED_COLUMNS} FROM deliveries WHERE id = ?1 AND state IN ('sending','sent') AND {ON_ATTEMPT}"
        ))
        .bind(id)
        .bind(at.map(|a| a.channel_index))
        .bind(at.map(|a| a.attempt))
        .fetch_optional(&self.writer)
        .await?;
        row.as_ref().map(claimed_from).transpose()
    }

    async fn apply_receipt(
        &self,
        id: i64,
        at: Option<AttemptRef>,
        r: Receipt,
        now: Millis,
    ) -> Result<bool> {
        let (to, from) = match r {
            Receipt::Delivered => ("delivered", "('sending','sent')"),
            Receipt::Read => ("read", "('sending','sent','delivered')"),
        };
        let n = sqlx::query(&format!(
            "UPDATE deliveries SET state = ?4, lease_until = NULL, updated_at = ?5 WHERE id = ?1 AND state IN {from} AND {ON_ATTEMPT}"
        ))
        .bind(id)
        .bind(at.map(|a| a.channel_index))
        .bind(at.map(|a| a.attempt))
        .bind(to)
        .bind(now)
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn zalo_token(&self, app_id: &str) -> Result<Option<TokenPair>> {
        let row = sqlx::query(
            "SELECT access_token, refresh_token, expires_at FROM zalo_tokens WHERE app_id = ?",
        )
        .bind(app_id)
        .fetch_optional(&self.writer)
        .await?;
        row.map(|r| {
            Ok(TokenPair {
                access_token: r.try_get(0)?,
                refresh_token: r.try_get(1)?,
                expires_at_ms: r.try_get(2)?,
            })
        })
        .transpose()
    }

    async fn seed_zalo_token(&self, app_id: &str, p: &TokenPair, now: Millis) -> Result<()> {
        self.put_zalo_token(app_id, p, now, false).await
    }

    async fn set_zalo_token(&self, app_id: &str, p: &TokenPair, now: Millis) -> Result<()> {
        self.put_zalo_token(app_id, p, now, true).await
    }

    async fn replace_zalo_token(
        &self,
        app_id: &str,
        old_refresh: &str,
        p: &TokenPair,
        now: Millis,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE zalo_tokens SET access_token = ?1, refresh_token = ?2, expires_at = ?3, updated_at = ?4 \
             WHERE app_id = ?5 AND refresh_token = ?6",
        )
        .bind(&p.access_token)
        .bind(&p.refresh_token)
        .bind(p.expires_at_ms)
        .bind(now)
        .bind(app_id)
        .bind(old_refresh)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delivery_by_ref(&self, channel: Channel, provider_ref: &str) -> Result<Option<i64>> {
        self.do_delivery_by_ref(channel, provider_ref).await
    }

    async fn apply_watermark(
        &self,
        channel: Channel,
        address: &str,
        watermark: Millis,
        r: Receipt,
        now: Millis,
    ) -> Result<u64> {
        self.do_apply_watermark(channel, address, watermark, r, now)
            .await
    }

    async fn set_zalo_following(&self, user_id: &str, following: bool, now: Millis) -> Result<u64> {
        self.do_set_zalo_following(user_id, following, now).await
    }

    async fn insert_webhook_event(
        &self,
        provider: &str,
        digest: &str,
        body: &str,
        now: Millis,
    ) -> Result<bool> {
        self.do_insert_webhook_event(provider, digest, body, now)
            .await
    }

    async fn pending_webhook_events(&self, limit: i64) -> Result<Vec<WebhookEvent>> {
        self.do_pending_webhook_events(limit).await
    }

    async fn finish_webhook_event(
        &self,
        id: i64,
        outcome: EventOutcome,
        now: Millis,
    ) -> Result<()> {
        self.do_finish_webhook_event(id, outcome, now).await
    }

    async fn webhook_counts(&self) -> Result<BTreeMap<String, BTreeMap<String, i64>>> {
        self.do_webhook_counts().await
    }
}
