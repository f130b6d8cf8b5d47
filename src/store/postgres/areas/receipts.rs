//! PostgreSQL side of what providers tell Loa after a send: receipts by provider id or watermark,
//! Zalo follow state, stored webhook events and the Zalo token pair.

use super::super::*;

impl PgStore {
    /// Stores an app's token pair; `overwrite` false keeps a pair already stored.
    async fn put_zalo_token(
        &self,
        app_id: &str,
        p: &TokenPair,
        now: Millis,
        overwrite: bool,
    ) -> Result<()> {
        let on_conflict = if overwrite {
            "DO UPDATE SET access_token = EXCLUDED.access_token, refresh_token = EXCLUDED.refresh_token, \
             expires_at = EXCLUDED.expires_at, updated_at = EXCLUDED.updated_at"
        } else {
            "DO NOTHING"
        };
        sqlx::query(&format!(
            "INSERT INTO zalo_tokens (app_id, access_token, refresh_token, expires_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (app_id) {on_conflict}"
        ))
        .bind(app_id)
        .bind(&p.access_token)
        .bind(&p.refresh_token)
        .bind(p.expires_at_ms)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl ReceiptStore for PgStore {
    async fn load_for_receipt(&self, id: i64, at: Option<AttemptRef>) -> Result<Option<Claimed>> {
        let row = sqlx::query(&format!(
            "SELECT {CLAIMED_COLUMNS} FROM deliveries WHERE id = $1 AND state IN ('sending','sent') AND {ON_ATTEMPT}"
        ))
        .bind(id)
        .bind(at.map(|a| a.channel_index))
        .bind(at.map(|a| a.attempt))
        .fetch_optional(&self.pool)
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
            "UPDATE deliveries SET state = $4, lease_until = NULL, updated_at = $5 WHERE id = $1 AND state IN {from} AND {ON_ATTEMPT}"
        ))
        .bind(id)
        .bind(at.map(|a| a.channel_index))
        .bind(at.map(|a| a.attempt))
        .bind(to)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn zalo_token(&self, app_id: &str) -> Result<Option<TokenPair>> {
        let row = sqlx::query(
            "SELECT access_token, refresh_token, expires_at FROM zalo_tokens WHERE app_id = $1",
        )
        .bind(app_id)
        .fetch_optional(&self.pool)
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

    async fn lock_zalo_refresh(
        &self,
        app_id: &str,
        refresh: &str,
        now: Millis,
        until: Millis,
    ) -> Result<bool> {
        // One conditional UPDATE: of two instances trying at once, the second waits on the row and
        // then finds the lock held.
        let n = sqlx::query(
            "UPDATE zalo_tokens SET refresh_owner = $1, refresh_until = $2 WHERE app_id = $3 \
             AND refresh_token = $4 AND (refresh_until IS NULL OR refresh_until <= $5 OR refresh_owner = $1)",
        )
        .bind(&self.owner)
        .bind(until)
        .bind(app_id)
        .bind(refresh)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn unlock_zalo_refresh(&self, app_id: &str) -> Result<()> {
        sqlx::query(
            "UPDATE zalo_tokens SET refresh_owner = NULL, refresh_until = NULL \
             WHERE app_id = $1 AND refresh_owner = $2",
        )
        .bind(app_id)
        .bind(&self.owner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn replace_zalo_token(
        &self,
        app_id: &str,
        old_refresh: &str,
        p: &TokenPair,
        now: Millis,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE zalo_tokens SET access_token = $1, refresh_token = $2, expires_at = $3, updated_at = $4, \
             refresh_owner = NULL, refresh_until = NULL WHERE app_id = $5 AND refresh_token = $6",
        )
        .bind(&p.access_token)
        .bind(&p.refresh_token)
        .bind(p.expires_at_ms)
        .bind(now)
        .bind(app_id)
        .bind(old_refresh)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delivery_by_ref(&self, channel: Channel, provider_ref: &str) -> Result<Option<i64>> {
        let row = sqlx::query(
            "SELECT r.delivery_id FROM receipt_refs r JOIN deliveries d ON d.id = r.delivery_id \
             WHERE r.channel = $1 AND r.ref = $2 AND d.channel = $1 AND d.provider_message_id = $2",
        )
        .bind(channel.as_str())
        .bind(provider_ref)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    async fn apply_watermark(
        &self,
        channel: Channel,
        address: &str,
        watermark: Millis,
        r: Receipt,
        now: Millis,
    ) -> Result<u64> {
        // Only Messenger has watermarks; the partial index deliveries_messenger_unread serves it, and
        // its WHERE terms are repeated literally so the planner can use it.
        if channel != Channel::Messenger {
            return Ok(0);
        }
        let (to, only) = match r {
            Receipt::Delivered => ("delivered", "AND d.state = 'sent'"),
            Receipt::Read => ("read", ""),
        };
        let n = sqlx::query(&format!(
            "UPDATE deliveries SET state = $1, lease_until = NULL, updated_at = $2 WHERE id IN ( \
               SELECT d.id FROM deliveries d JOIN contacts c ON c.id = d.contact_id \
               WHERE c.facebook_psid = $3 AND d.channel = 'messenger' AND d.state IN ('sent','delivered') {only} \
                 AND d.sent_at <= $4)"
        ))
        .bind(to)
        .bind(now)
        .bind(address)
        .bind(watermark)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n)
    }

    async fn set_zalo_following(&self, user_id: &str, following: bool, now: Millis) -> Result<u64> {
        let n = sqlx::query(
            "UPDATE contacts SET zalo_following = $1, updated_at = $2 WHERE zalo_user_id = $3",
        )
        .bind(following)
        .bind(now)
        .bind(user_id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n)
    }

    async fn insert_webhook_event(
        &self,
        provider: &str,
        digest: &str,
        body: &str,
        now: Millis,
    ) -> Result<bool> {
        let n = sqlx::query(
            "INSERT INTO webhook_events (provider, digest, body, received_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (provider, digest) DO NOTHING",
        )
        .bind(provider)
        .bind(digest)
        .bind(body)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn claim_webhook_events(
        &self,
        limit: i64,
        now: Millis,
        lease_until: Millis,
    ) -> Result<Vec<WebhookEvent>> {
        let rows = sqlx::query(
            "UPDATE webhook_events SET lease_owner = $1, lease_until = $2 WHERE id IN ( \
               SELECT id FROM webhook_events WHERE processed_at IS NULL \
                 AND (lease_until IS NULL OR lease_until <= $3 OR lease_owner = $1) ORDER BY id LIMIT $4 \
                 FOR UPDATE SKIP LOCKED) \
             RETURNING id, provider, body",
        )
        .bind(&self.owner)
        .bind(lease_until)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut events = rows.iter().map(event_from).collect::<Result<Vec<_>>>()?;
        // RETURNING promises no order; events are applied in the order they came.
        events.sort_by_key(|e| e.id);
        Ok(events)
    }

    async fn finish_webhook_event(
        &self,
        id: i64,
        outcome: EventOutcome,
        now: Millis,
    ) -> Result<()> {
        sqlx::query("UPDATE webhook_events SET processed_at = $1, outcome = $2 WHERE id = $3")
            .bind(now)
            .bind(outcome.as_str())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn webhook_counts(&self) -> Result<BTreeMap<String, BTreeMap<String, i64>>> {
        let rows = sqlx::query(
            "SELECT provider, COALESCE(outcome, 'pending') AS outcome, count(*) AS n FROM webhook_events GROUP BY 1, 2",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
        for r in rows {
            out.entry(r.try_get("provider")?)
                .or_default()
                .insert(r.try_get("outcome")?, r.try_get("n")?);
        }
        Ok(out)
    }
}
