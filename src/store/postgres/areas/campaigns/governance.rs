//! PostgreSQL side of governance for campaigns: the shared template library, campaign editors and the
//! approval moves, each one conditional UPDATE so two people (or instances) acting at once cannot both win.

use super::super::super::*;
use super::state_names;

impl PgStore {
    pub(super) async fn do_publish_template(
        &self,
        id: i64,
        by: i64,
        topics: &[String],
        now: Millis,
    ) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE templates SET published_at = $1, published_by = $2, topics = $3 WHERE id = $4 AND published_at IS NULL",
        )
        .bind(now)
        .bind(by)
        .bind(serde_json::to_string(topics).unwrap_or_else(|_| "[]".into()))
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub(super) async fn do_library(
        &self,
        user_path: &str,
        topic: Option<&str>,
    ) -> Result<Vec<Template>> {
        // The publisher's path is a prefix of the user's: the node itself or one above it (paths
        // hold digits and '/' only, so LIKE has nothing to escape). Paths ordered bytewise, as
        // SQLite orders them.
        let rows = sqlx::query(
            "SELECT t.* FROM templates t JOIN orgs o ON o.id = t.org_id \
             WHERE t.published_at IS NOT NULL AND ($1 = '' OR $1 LIKE o.path || '%') \
             AND ($2::TEXT IS NULL OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(t.topics::jsonb) j(v) WHERE j.v = $2)) \
             ORDER BY o.path COLLATE \"C\", t.id LIMIT 1000",
        )
        .bind(user_path)
        .bind(topic)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(template_from).collect()
    }

    pub(super) async fn do_update_campaign(
        &self,
        id: i64,
        c: &NewCampaign,
        from: &[CampaignState],
        expected_updated_at: Millis,
        editor: i64,
        now: Millis,
    ) -> Result<bool> {
        let audience =
            serde_json::to_string(&c.audience).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let channels =
            serde_json::to_string(&c.channels).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let mut tx = self.pool.begin().await?;
        // Conditional on the version the editor saw: of two concurrent edits (or an edit and an
        // approval) the second waits for the row lock, re-reads the row, finds `updated_at` moved
        // and changes nothing. The lock is held until the editor is recorded.
        let n = sqlx::query(
            "UPDATE campaigns SET name = $1, template_id = $2, audience = $3, channels = $4, messenger_tag = $5, \
             send_at = $6, state = 'draft', submitted_by = NULL, approved_by = NULL, approved_at = NULL, \
             approval = NULL, approval_hash = NULL, updated_at = $7, schedule = $11, series = $12, urgent = $13, \
             schedule_cursor = NULL, schedule_ended = FALSE \
             WHERE id = $8 AND updated_at = $9 AND state = ANY($10)",
        )
        .bind(&c.name)
        .bind(c.template_id)
        .bind(audience)
        .bind(channels)
        .bind(&c.messenger_tag)
        .bind(c.send_at)
        .bind(now)
        .bind(id)
        .bind(expected_updated_at)
        .bind(state_names(from))
        .bind(c.recurrence.as_ref().and_then(|r| serde_json::to_string(r).ok()))
        .bind((!c.series.is_empty()).then(|| serde_json::to_string(&c.series).unwrap_or_default()))
        .bind(c.urgent)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO campaign_editors (campaign_id, user_id, edited_at) VALUES ($1, $2, $3) \
             ON CONFLICT (campaign_id, user_id) DO UPDATE SET edited_at = EXCLUDED.edited_at",
        )
        .bind(id)
        .bind(editor)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn do_campaign_editors(&self, id: i64) -> Result<Vec<i64>> {
        let rows = sqlx::query(
            "SELECT user_id FROM campaign_editors WHERE campaign_id = $1 ORDER BY user_id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| r.try_get::<i64, _>(0).map_err(Into::into))
            .collect()
    }

    pub(super) async fn do_submit_campaign(&self, id: i64, by: i64, now: Millis) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE campaigns SET state = 'submitted', submitted_by = $1, rejection_reason = NULL, updated_at = $2 \
             WHERE id = $3 AND state IN ('draft','rejected')",
        )
        .bind(by)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub(super) async fn do_approve_campaign(
        &self,
        id: i64,
        by: i64,
        expected_updated_at: Millis,
        snapshot: &serde_json::Value,
        hash: &str,
        now: Millis,
    ) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE campaigns SET state = 'approved', approved_by = $1, approved_at = $2, approval = $3, approval_hash = $4, \
             updated_at = $2 WHERE id = $5 AND state = 'submitted' AND updated_at = $6",
        )
        .bind(by)
        .bind(now)
        .bind(snapshot.to_string())
        .bind(hash)
        .bind(id)
        .bind(expected_updated_at)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub(super) async fn do_reject_campaign(
        &self,
        id: i64,
        reason: &str,
        now: Millis,
    ) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE campaigns SET state = 'rejected', rejection_reason = $1, updated_at = $2 WHERE id = $3 AND state = 'submitted'",
        )
        .bind(reason)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub(super) async fn do_revoke_approval(
        &self,
        id: i64,
        from: &[CampaignState],
        now: Millis,
    ) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE campaigns SET state = 'draft', submitted_by = NULL, approved_by = NULL, approved_at = NULL, \
             approval = NULL, approval_hash = NULL, updated_at = $1 \
             WHERE id = $2 AND state = ANY($3)",
        )
        .bind(now)
        .bind(id)
        .bind(state_names(from))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }
}
