//! Web sessions, failed-login counts and passwords set from the pages.

use super::*;
use crate::domain::session::{Failures, NewSession, SessionRow, StashedUpload, WebSession};

#[async_trait::async_trait]
pub trait SessionStore: Send + Sync {
    async fn create_session(&self, s: &NewSession) -> Result<()>;

    /// The live session with this hash (not revoked, not past `expires_at`, seen after
    /// `now - idle_ms`, its user enabled), marked seen at `now` when it was last seen more than
    /// `touch_ms` ago (so a page view is not always a write).
    async fn session(
        &self,
        id_hash: &str,
        now: Millis,
        idle_ms: Millis,
        touch_ms: Millis,
    ) -> Result<Option<WebSession>>;

    /// Ends one session (log out); false if it was not live.
    async fn end_session(&self, id_hash: &str, now: Millis) -> Result<bool>;

    /// Ends a user's live sessions but `keep` (the one changing its own password); returns how many.
    async fn end_user_sessions(&self, user_id: i64, keep: Option<&str>, now: Millis)
    -> Result<u64>;

    /// A user's live sessions, newest first.
    async fn list_sessions(&self, user_id: i64, now: Millis) -> Result<Vec<SessionRow>>;

    async fn set_password(&self, user_id: i64, password_hash: &str) -> Result<()>;

    /// The failures recorded for each key that has some (keys absent have none).
    async fn login_failures(&self, keys: &[String]) -> Result<Vec<(String, Failures)>>;

    /// Counts a failure for each key; a window older than `window_ms` starts again at `now`.
    async fn note_login_failure(
        &self,
        keys: &[String],
        now: Millis,
        window_ms: Millis,
    ) -> Result<()>;

    /// Forgets a key's failures (a successful login of that user).
    async fn clear_login_failures(&self, key: &str) -> Result<()>;

    /// Keeps an uploaded file until its import is confirmed; drops stashes older than `prune_before`.
    async fn stash_upload(&self, u: &StashedUpload, prune_before: Millis) -> Result<()>;

    /// The file `user_id` stashed under this hash, if still there and newer than `since`.
    async fn stashed_upload(
        &self,
        id_hash: &str,
        user_id: i64,
        since: Millis,
    ) -> Result<Option<StashedUpload>>;

    async fn drop_upload(&self, id_hash: &str) -> Result<()>;
}

// The statements are the same text on both dialects (`$n` placeholders, first used in order, which
// SQLite numbers the same way; `FALSE` is 0 there).
pub(super) const INSERT_SESSION: &str = "INSERT INTO web_sessions \
     (id_hash, user_id, csrf, created_at, last_seen_at, expires_at) VALUES ($1, $2, $3, $4, $4, $5)";
/// Sessions past their absolute end are of no use to anyone: dropped when a new one opens.
pub(super) const PRUNE_SESSIONS: &str = "DELETE FROM web_sessions WHERE expires_at < $1";
pub(super) const SESSION: &str = "SELECT s.csrf, s.last_seen_at, u.id, u.username, u.org_id, u.roles, \
     COALESCE(o.path, '') AS path FROM web_sessions s JOIN users u ON u.id = s.user_id \
     LEFT JOIN orgs o ON o.id = u.org_id \
     WHERE s.id_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 AND s.last_seen_at > $3 \
     AND u.disabled = FALSE";
pub(super) const TOUCH_SESSION: &str =
    "UPDATE web_sessions SET last_seen_at = $1 WHERE id_hash = $2 AND revoked_at IS NULL";
pub(super) const END_SESSION: &str =
    "UPDATE web_sessions SET revoked_at = $1 WHERE id_hash = $2 AND revoked_at IS NULL";
pub(super) const END_USER_SESSIONS: &str = "UPDATE web_sessions SET revoked_at = $1 \
     WHERE user_id = $2 AND revoked_at IS NULL AND id_hash <> COALESCE($3, '')";
pub(super) const LIST_SESSIONS: &str = "SELECT user_id, created_at, last_seen_at, expires_at \
     FROM web_sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 \
     ORDER BY created_at DESC";
pub(super) const SET_PASSWORD: &str = "UPDATE users SET password_hash = $1 WHERE id = $2";
pub(super) const LOGIN_FAILURES: &str =
    "SELECT failures, first_at FROM login_throttle WHERE key = $1";
/// $3 is the start of the current window: an older first failure starts a new window at $2.
pub(super) const NOTE_LOGIN_FAILURE: &str = "INSERT INTO login_throttle (key, failures, first_at) \
     VALUES ($1, 1, $2) ON CONFLICT (key) DO UPDATE SET \
     failures = CASE WHEN login_throttle.first_at <= $3 THEN 1 ELSE login_throttle.failures + 1 END, \
     first_at = CASE WHEN login_throttle.first_at <= $3 THEN $2 ELSE login_throttle.first_at END";
pub(super) const PRUNE_LOGIN_FAILURES: &str = "DELETE FROM login_throttle WHERE first_at < $1";
pub(super) const CLEAR_LOGIN_FAILURES: &str = "DELETE FROM login_throttle WHERE key = $1";
pub(super) const PRUNE_UPLOADS: &str = "DELETE FROM upload_stash WHERE created_at < $1";
pub(super) const STASH_UPLOAD: &str = "INSERT INTO upload_stash \
     (id_hash, user_id, org_id, kind, file_name, bytes, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
pub(super) const STASHED_UPLOAD: &str = "SELECT id_hash, user_id, org_id, kind, file_name, bytes, created_at \
     FROM upload_stash WHERE id_hash = $1 AND user_id = $2 AND created_at >= $3";
pub(super) const DROP_UPLOAD: &str = "DELETE FROM upload_stash WHERE id_hash = $1";

/// The one implementation of `SessionStore`, for each dialect's store type: the statements above
/// are the same text on both, so only the pools differ (`$writer` for writes, `$reader` for reads;
/// PostgreSQL passes its one pool twice). Expanded in `sqlite/areas/sessions.rs` and
/// `postgres/areas/sessions.rs`, where the row readers (`principal_from`) are in scope.
macro_rules! session_store {
    ($store:ty, writer: $writer:ident, reader: $reader:ident) => {
        #[async_trait::async_trait]
        impl SessionStore for $store {
            async fn create_session(&self, s: &NewSession) -> Result<()> {
                let mut tx = self.$writer.begin().await?;
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
                    .fetch_optional(&self.$reader)
                    .await?
                else {
                    return Ok(None);
                };
                let last_seen_at: i64 = r.try_get("last_seen_at")?;
                if now - last_seen_at > touch_ms {
                    sqlx::query(TOUCH_SESSION)
                        .bind(now)
                        .bind(id_hash)
                        .execute(&self.$writer)
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
                    .execute(&self.$writer)
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
                    .execute(&self.$writer)
                    .await?
                    .rows_affected())
            }

            async fn list_sessions(&self, user_id: i64, now: Millis) -> Result<Vec<SessionRow>> {
                let rows = sqlx::query(LIST_SESSIONS)
                    .bind(user_id)
                    .bind(now)
                    .fetch_all(&self.$reader)
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
                    .execute(&self.$writer)
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
                        .fetch_optional(&self.$reader)
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
                let mut tx = self.$writer.begin().await?;
                // Keys whose window ended long ago count nothing: dropped, so that guessing
                // many usernames does not grow the table without end.
                sqlx::query(PRUNE_LOGIN_FAILURES)
                    .bind(now.saturating_sub(2 * window_ms))
                    .execute(&mut *tx)
                    .await?;
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
                    .execute(&self.$writer)
                    .await?;
                Ok(())
            }

            async fn stash_upload(&self, u: &StashedUpload, prune_before: Millis) -> Result<()> {
                let mut tx = self.$writer.begin().await?;
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
                    .fetch_optional(&self.$reader)
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
                    .execute(&self.$writer)
                    .await?;
                Ok(())
            }
        }
    };
}
pub(super) use session_store;
