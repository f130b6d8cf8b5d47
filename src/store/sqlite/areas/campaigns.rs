//! SQLite side of templates, the shared library, campaigns and their approval moves.

use super::super::*;

#[async_trait::async_trait]
impl CampaignStore for SqliteStore {
    async fn publish_template(
        &self,
        id: i64,
        by: i64,
        topics: &[String],
        now: Millis,
    ) -> Result<bool> {
        self.do_publish_template(id, by, topics, now).await
    }

    async fn list_templates(&self, org_path: &str, limit: i64) -> Result<Vec<Template>> {
        let rows = sqlx::query(crate::store::campaigns::LIST_TEMPLATES)
            .bind(org_path)
            .bind(limit)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(template_from).collect()
    }

    async fn library(&self, user_path: &str, topic: Option<&str>) -> Result<Vec<Template>> {
        self.do_library(user_path, topic).await
    }

    async fn update_campaign(
        &self,
        id: i64,
        c: &NewCampaign,
        from: &[CampaignState],
        expected_updated_at: Millis,
        editor: i64,
        now: Millis,
    ) -> Result<bool> {
        self.do_update_campaign(id, c, from, expected_updated_at, editor, now)
            .await
    }

    async fn campaign_editors(&self, id: i64) -> Result<Vec<i64>> {
        self.do_campaign_editors(id).await
    }

    async fn submit_campaign(&self, id: i64, by: i64, now: Millis) -> Result<bool> {
        self.do_submit_campaign(id, by, now).await
    }

    async fn approve_campaign(
        &self,
        id: i64,
        by: i64,
        expected_updated_at: Millis,
        snapshot: &serde_json::Value,
        hash: &str,
        now: Millis,
    ) -> Result<bool> {
        self.do_approve_campaign(id, by, expected_updated_at, snapshot, hash, now)
            .await
    }

    async fn reject_campaign(&self, id: i64, reason: &str, now: Millis) -> Result<bool> {
        self.do_reject_campaign(id, reason, now).await
    }

    async fn revoke_approval(&self, id: i64, from: &[CampaignState], now: Millis) -> Result<bool> {
        self.do_revoke_approval(id, from, now).await
    }

    async fn create_template(
        &self,
        t: &NewTemplate,
        created_by: Option<i64>,
        now: Millis,
    ) -> Result<Template> {
        let b = &t.bodies;
        let id: i64 = sqlx::query(
            "INSERT INTO templates (org_id, name, email_subject, email_text, email_html, sms_text, zalo_text, messenger_text, zns, zalo_transaction, created_at, created_by) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(t.org_id)
        .bind(t.name.trim())
        .bind(&b.email_subject)
        .bind(&b.email_text)
        .bind(&b.email_html)
        .bind(&b.sms_text)
        .bind(&b.zalo_text)
        .bind(&b.messenger_text)
        .bind(b.zns.as_ref().and_then(|z| serde_json::to_string(z).ok()))
        .bind(
            b.zalo_transaction
                .as_ref()
                .and_then(|z| serde_json::to_string(z).ok()),
        )
        .bind(now)
        .bind(created_by)
        .written_row(&self.writer)
        .await?
        .try_get(0)?;
        self.get_template(id).await
    }

    async fn get_template(&self, id: i64) -> Result<Template> {
        let r = sqlx::query("SELECT * FROM templates WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.writer)
            .await?
            .ok_or(StoreError::NotFound("template"))?;
        template_from(&r)
    }

    async fn create_campaign(
        &self,
        c: &NewCampaign,
        created_by: Option<i64>,
        now: Millis,
    ) -> Result<Campaign> {
        let audience =
            serde_json::to_string(&c.audience).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let channels =
            serde_json::to_string(&c.channels).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let row = sqlx::query(&format!(
            "INSERT INTO campaigns (org_id, name, template_id, audience, channels, messenger_tag, state, send_at, created_at, updated_at, created_by, \
             schedule, series, urgent) \
             VALUES (?, ?, ?, ?, ?, ?, 'draft', ?, ?, ?, ?, ?, ?, ?) RETURNING {CAMPAIGN_COLS}"
        ))
        .bind(c.org_id)
        .bind(&c.name)
        .bind(c.template_id)
        .bind(audience)
        .bind(channels)
        .bind(&c.messenger_tag)
        .bind(c.send_at)
        .bind(now)
        .bind(now)
        .bind(created_by)
        .bind(c.recurrence.as_ref().and_then(|r| serde_json::to_string(r).ok()))
        .bind((!c.series.is_empty()).then(|| json_ids(&c.series)))
        .bind(c.urgent)
        .written_row(&self.writer)
        .await?;
        campaign_from(&row)
    }

    async fn get_campaign(&self, id: i64) -> Result<Campaign> {
        let row = sqlx::query(&format!(
            "SELECT {CAMPAIGN_COLS} FROM campaigns WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.writer)
        .await?
        .ok_or(StoreError::NotFound("campaign"))?;
        campaign_from(&row)
    }

    async fn list_campaigns(&self, org_path: &str, org_id: Option<i64>) -> Result<Vec<Campaign>> {
        let rows = sqlx::query(&format!(
            "SELECT {CAMPAIGN_COLS} FROM campaigns WHERE (?1 IS NULL OR org_id = ?1) \
             AND org_id IN (SELECT id FROM orgs WHERE path LIKE ?2 || '%') ORDER BY id DESC LIMIT 500"
        ))
        .bind(org_id)
        .bind(org_path)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(campaign_from).collect()
    }

    async fn transition_campaign(
        &self,
        id: i64,
        from: &[CampaignState],
        to: CampaignState,
        now: Millis,
    ) -> Result<bool> {
        let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        let n = sqlx::query(
            "UPDATE campaigns SET state = ?1, updated_at = ?2 WHERE id = ?3 AND state IN (SELECT value FROM json_each(?4))",
        )
        .bind(to.as_str())
        .bind(now)
        .bind(id)
        .bind(serde_json::to_string(&from).unwrap_or_default())
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn due_campaigns(&self, now: Millis) -> Result<Vec<i64>> {
        let rows = sqlx::query(
            "SELECT id FROM campaigns WHERE state = 'scheduled' AND paused = 0 AND schedule IS NULL AND COALESCE(send_at, 0) <= ?",
        )
        .bind(now)
        .fetch_all(&self.writer)
        .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    async fn cancel_campaign(&self, id: i64, now: Millis) -> Result<u64> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let moved = sqlx::query(
            "UPDATE campaigns SET state = 'cancelled', updated_at = ?1 WHERE id = ?2 \
             AND state IN ('draft','submitted','rejected','approved','scheduled','running')",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved == 0 {
            return Err(StoreError::Invalid(
                "campaign cannot be cancelled in its current state".into(),
            ));
        }
        sqlx::query("UPDATE runs SET state = 'cancelled', finished_at = ?1 WHERE campaign_id = ?2 AND state IN ('pending','running')")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query(
            "UPDATE deliveries SET state = 'cancelled', reason_code = 'cancelled', updated_at = ?1 \
             WHERE campaign_id = ?2 AND state IN ('queued','retrying')",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n)
    }
}
