//! PostgreSQL side of web sessions and failed-login counts (the statements are in `store/sessions.rs`).

use super::super::*;
use crate::domain::session::{Failures, NewSession, SessionRow, StashedUpload, WebSession};
use crate::store::sessions::*;

#[async_trait::async_trait]
impl SessionStore for PgStore {
    async fn create_session(&self, s: &NewSession) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(PRUNE_SESSIONS)
            .bind(s.now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(INSERT_SESSION)
            .bind(&s.id_hash)
            .bind(s.user_id)
            .bind(&s.csrf)
            .bind(s.now)
            .bind(s.expires_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn session(
        &self,
        id_hash: &str,
        now: Millis,
        idle_ms: Millis,
        touch_ms: Millis,
    ) -> Result<Option<WebSession>> {
        let Some(r) = sqlx::query(SESSION)
            .bind(id_hash)
            .bind(now)
            .bind(now.saturating_sub(idle_ms))
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let last_seen_at: i64 = r.try_get("last_seen_at")?;
        if now - last_seen_at > touch_ms {
            sqlx::query(TOUCH_SESSION)
                .bind(now)
                .bind(id_hash)
                .execute(&self.pool)
                .await?;
        }
        Ok(Some(WebSession {
            principal: principal_from(&r)?,
            csrf: r.try_get("csrf")?,
            last_seen_at,
        }))
    }

    async fn end_session(&self, id_hash: &str, now: Millis) -> Result<bool> {
        Ok(sqlx::query(END_SESSION)
            .bind(now)
            .bind(id_hash)
            .execute(&self.pool)
            .await?
            .rows_affected()
            > 0)
    }

    async fn end_user_sessions(
        &self,
        user_id: i64,
        keep: Option<&str>,
        now: Millis,
    ) -> Result<u64> {
        Ok(sqlx::query(END_USER_SESSIONS)
            .bind(now)
            .bind(user_id)
            .bind(keep)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    async fn list_sessions(&self, user_id: i64, now: Millis) -> Result<Vec<SessionRow>> {
        let rows = sqlx::query(LIST_SESSIONS)
            .bind(user_id)
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(SessionRow {
                    user_id: r.try_get("user_id")?,
                    created_at: r.try_get("created_at")?,
                    last_seen_at: r.try_get("last_seen_at")?,
                    expires_at: r.try_get("expires_at")?,
                })
            })
            .collect()
    }

    async fn set_password(&self, user_id: i64, password_hash: &str) -> Result<()> {
        let n = sqlx::query(SET_PASSWORD)
            .bind(password_hash)
            .bind(user_id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound("user"));
        }
        Ok(())
    }

    async fn login_failures(&self, keys: &[String]) -> Result<Vec<(String, Failures)>> {
        let mut out = Vec::new();
        for key in keys {
            if let Some(r) = sqlx::query(LOGIN_FAILURES)
                .bind(key)
                .fetch_optional(&self.pool)
                .await?
            {
                out.push((
                    key.clone(),
                    Failures {
                        failures: r.try_get("failures")?,
                        first_at: r.try_get("first_at")?,
                    },
                ));
            }
        }
        Ok(out)
    }

    async fn note_login_failure(
        &self,
        keys: &[String],
        now: Millis,
        window_ms: Millis,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for key in keys {
            sqlx::query(NOTE_LOGIN_FAILURE)
                .bind(key)
                .bind(now)
                .bind(now.saturating_sub(window_ms))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn clear_login_failures(&self, key: &str) -> Result<()> {
        sqlx::query(CLEAR_LOGIN_FAILURES)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn stash_upload(&self, u: &StashedUpload, prune_before: Millis) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(PRUNE_UPLOADS)
            .bind(prune_before)
            .execute(&mut *tx)
            .await?;
        sqlx::query(STASH_UPLOAD)
            .bind(&u.id_hash)
            .bind(u.user_id)
            .bind(u.org_id)
            .bind(&u.kind)
            .bind(&u.file_name)
            .bind(&u.bytes)
            .bind(u.created_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn stashed_upload(
        &self,
        id_hash: &str,
        user_id: i64,
        since: Millis,
    ) -> Result<Option<StashedUpload>> {
        let Some(r) = sqlx::query(STASHED_UPLOAD)
            .bind(id_hash)
            .bind(user_id)
            .bind(since)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(StashedUpload {
            id_hash: r.try_get("id_hash")?,
            user_id: r.try_get("user_id")?,
            org_id: r.try_get("org_id")?,
            kind: r.try_get("kind")?,
            file_name: r.try_get("file_name")?,
            bytes: r.try_get("bytes")?,
            created_at: r.try_get("created_at")?,
        }))
    }

    async fn drop_upload(&self, id_hash: &str) -> Result<()> {
        sqlx::query(DROP_UPLOAD)
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
