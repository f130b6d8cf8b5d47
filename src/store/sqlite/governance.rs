//! SQLite side of governance: users and API tokens, the audit log, node approval policy, the shared
//! template library and the campaign approval moves (each one conditional UPDATE, so two people
//! acting at once cannot both win).

use sqlx::Row;

use super::{SqliteStore, USER_COLS, Written, audit_from, corrupt, template_from, user_from};
use crate::domain::Millis;
use crate::domain::access::{AuditEntry, NewUser, Principal, User, UserRole};
use crate::domain::campaign::{CampaignState, NewCampaign, Template};
use crate::store::{AuditRow, Result, StoreError};

fn states_json(states: &[CampaignState]) -> String {
    let v: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
    serde_json::to_string(&v).unwrap_or_default()
}

impl SqliteStore {
    pub(super) async fn do_create_user(&self, u: &NewUser, now: Millis) -> Result<User> {
        let row = sqlx::query(&format!(
            "INSERT INTO users (org_id, username, full_name, roles, password_hash, created_at) \
             VALUES (?, ?, ?, ?, ?, ?) RETURNING {USER_COLS}"
        ))
        .bind(u.org_id)
        .bind(u.username.trim())
        .bind(u.full_name.trim())
        .bind(UserRole::join(&u.roles))
        .bind(&u.password_hash)
        .bind(now)
        .written_row(&self.writer)
        .await?;
        user_from(&row)
    }

    pub(super) async fn do_get_user(&self, id: Option<i64>, name: Option<&str>) -> Result<User> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLS} FROM users WHERE id = ?1 OR username = ?2"
        ))
        .bind(id)
        .bind(name)
        .fetch_optional(&self.reader)
        .await?
        .ok_or(StoreError::NotFound("user"))?;
        user_from(&row)
    }

    pub(super) async fn do_list_users(&self, org_path: &str) -> Result<Vec<User>> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLS} FROM users u WHERE (?1 = '' AND u.org_id IS NULL) \
             OR u.org_id IN (SELECT id FROM orgs WHERE path LIKE ?1 || '%') ORDER BY id"
        ))
        .bind(org_path)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(user_from).collect()
    }

    pub(super) async fn do_password_hash(&self, username: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query("SELECT password_hash FROM users WHERE username = ? AND disabled = 0")
                .bind(username)
                .fetch_optional(&self.reader)
                .await?
                .map(|r| r.try_get::<Option<String>, _>(0))
                .transpose()?
                .flatten(),
        )
    }

    pub(super) async fn do_create_api_token(
        &self,
        user_id: i64,
        name: &str,
        token_hash: &str,
        now: Millis,
    ) -> Result<i64> {
        Ok(sqlx::query(
            "INSERT INTO api_tokens (user_id, name, token_hash, created_at) VALUES (?, ?, ?, ?) RETURNING id",
        )
        .bind(user_id)
        .bind(name)
        .bind(token_hash)
        .bind(now)
        .written_row(&self.writer)
        .await?
        .try_get(0)?)
    }

    pub(super) async fn do_revoke_api_token(
        &self,
        user_id: i64,
        token_id: i64,
        now: Millis,
    ) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(token_id)
        .bind(user_id)
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub(super) async fn do_principal_by_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<Principal>> {
        let Some(r) = sqlx::query(
            "SELECT u.id, u.username, u.org_id, u.roles, COALESCE(o.path, '') AS path \
             FROM api_tokens t JOIN users u ON u.id = t.user_id LEFT JOIN orgs o ON o.id = u.org_id \
             WHERE t.token_hash = ? AND t.revoked_at IS NULL AND u.disabled = 0",
        )
        .bind(token_hash)
        .fetch_optional(&self.reader)
        .await?
        else {
            return Ok(None);
        };
        let roles: String = r.try_get("roles")?;
        Ok(Some(Principal {
            user_id: r.try_get("id")?,
            username: r.try_get("username")?,
            org_id: r.try_get("org_id")?,
            org_path: r.try_get("path")?,
            roles: UserRole::parse_list(&roles).ok_or_else(|| corrupt("user roles", &roles))?,
        }))
    }

    pub(super) async fn do_audit(&self, e: &AuditEntry, now: Millis) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (at, user_id, username, org_id, action, object, object_id, detail) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(now)
        .bind(e.user_id)
        .bind(&e.username)
        .bind(e.org_id)
        .bind(e.action)
        .bind(e.object)
        .bind(e.object_id)
        .bind(e.detail.to_string())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub(super) async fn do_list_audit(
        &self,
        org_path: &str,
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditRow>> {
        let rows = sqlx::query(
            "SELECT id, at, user_id, username, org_id, action, object, object_id, detail FROM audit_log \
             WHERE (?1 = '' OR org_id IN (SELECT id FROM orgs WHERE path LIKE ?1 || '%')) \
             AND id < ?2 ORDER BY id DESC LIMIT ?3",
        )
        .bind(org_path)
        .bind(before_id.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(audit_from).collect()
    }

    pub(super) async fn do_set_self_approval(&self, org_id: i64, allowed: bool) -> Result<()> {
        let n = sqlx::query("UPDATE orgs SET self_approval = ? WHERE id = ?")
            .bind(allowed)
            .bind(org_id)
            .execute(&self.writer)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound("org"));
        }
        Ok(())
    }

    pub(super) async fn do_publish_template(
        &self,
        id: i64,
        by: i64,
        topics: &[String],
        now: Millis,
    ) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE templates SET published_at = ?, published_by = ?, topics = ? WHERE id = ? AND published_at IS NULL",
        )
        .bind(now)
        .bind(by)
        .bind(serde_json::to_string(topics).unwrap_or_else(|_| "[]".into()))
        .bind(id)
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub(super) async fn do_library(
        &self,
        user_path: &str,
        topic: Option<&str>,
    ) -> Result<Vec<Template>> {
        // The publisher's path is a prefix of the user's: the node itself or one above it.
        let rows = sqlx::query(
            "SELECT t.* FROM templates t JOIN orgs o ON o.id = t.org_id \
             WHERE t.published_at IS NOT NULL AND (?1 = '' OR substr(?1, 1, length(o.path)) = o.path) \
             AND (?2 IS NULL OR EXISTS (SELECT 1 FROM json_each(t.topics) j WHERE j.value = ?2)) \
             ORDER BY o.path, t.id LIMIT 1000",
        )
        .bind(user_path)
        .bind(topic)
        .fetch_all(&self.reader)
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
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let n = sqlx::query(
            "UPDATE campaigns SET name = ?1, template_id = ?2, audience = ?3, channels = ?4, messenger_tag = ?5, \
             send_at = ?6, state = 'draft', submitted_by = NULL, approved_by = NULL, approved_at = NULL, \
             approval = NULL, approval_hash = NULL, updated_at = ?7, schedule = ?11, series = ?12, urgent = ?13, \
             schedule_cursor = NULL, schedule_ended = 0 \
             WHERE id = ?8 AND updated_at = ?9 AND state IN (SELECT value FROM json_each(?10))",
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
        .bind(states_json(from))
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
            "INSERT INTO campaign_editors (campaign_id, user_id, edited_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (campaign_id, user_id) DO UPDATE SET edited_at = excluded.edited_at",
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
            "SELECT user_id FROM campaign_editors WHERE campaign_id = ? ORDER BY user_id",
        )
        .bind(id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| r.try_get::<i64, _>(0).map_err(Into::into))
            .collect()
    }

    pub(super) async fn do_submit_campaign(&self, id: i64, by: i64, now: Millis) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE campaigns SET state = 'submitted', submitted_by = ?, rejection_reason = NULL, updated_at = ? \
             WHERE id = ? AND state IN ('draft','rejected')",
        )
        .bind(by)
        .bind(now)
        .bind(id)
        .execute(&self.writer)
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
            "UPDATE campaigns SET state = 'approved', approved_by = ?, approved_at = ?, approval = ?, approval_hash = ?, \
             updated_at = ? WHERE id = ? AND state = 'submitted' AND updated_at = ?",
        )
        .bind(by)
        .bind(now)
        .bind(snapshot.to_string())
        .bind(hash)
        .bind(now)
        .bind(id)
        .bind(expected_updated_at)
        .execute(&self.writer)
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
            "UPDATE campaigns SET state = 'rejected', rejection_reason = ?, updated_at = ? WHERE id = ? AND state = 'submitted'",
        )
        .bind(reason)
        .bind(now)
        .bind(id)
        .execute(&self.writer)
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
             approval = NULL, approval_hash = NULL, updated_at = ?1 \
             WHERE id = ?2 AND state IN (SELECT value FROM json_each(?3))",
        )
        .bind(now)
        .bind(id)
        .bind(states_json(from))
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(n == 1)
    }
}
