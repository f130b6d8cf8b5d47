//! PostgreSQL side of users, API tokens and the audit log.

use super::super::*;
use crate::domain::access::UserRole;

#[async_trait::async_trait]
impl UserStore for PgStore {
    async fn create_user(&self, u: &NewUser, now: Millis) -> Result<User> {
        let row = sqlx::query(&format!(
            "INSERT INTO users (org_id, username, full_name, roles, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {USER_COLS}"
        ))
        .bind(u.org_id)
        .bind(u.username.trim())
        .bind(u.full_name.trim())
        .bind(UserRole::join(&u.roles))
        .bind(&u.password_hash)
        .bind(now)
        .written_row(&self.pool)
        .await?;
        user_from(&row)
    }

    async fn get_user(&self, id: i64) -> Result<User> {
        let row = sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("user"))?;
        user_from(&row)
    }

    async fn user_by_name(&self, username: &str) -> Result<User> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLS} FROM users WHERE username = $1"
        ))
        .bind(username)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("user"))?;
        user_from(&row)
    }

    async fn list_users(&self, org_path: &str) -> Result<Vec<User>> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLS} FROM users u WHERE ($1 = '' AND u.org_id IS NULL) \
             OR u.org_id IN (SELECT id FROM orgs WHERE path LIKE $1 || '%') ORDER BY id"
        ))
        .bind(org_path)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user_from).collect()
    }

    async fn password_hash(&self, username: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query("SELECT password_hash FROM users WHERE username = $1 AND NOT disabled")
                .bind(username)
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.try_get::<Option<String>, _>(0))
                .transpose()?
                .flatten(),
        )
    }

    async fn create_api_token(
        &self,
        user_id: i64,
        name: &str,
        token_hash: &str,
        now: Millis,
    ) -> Result<i64> {
        Ok(sqlx::query(
            "INSERT INTO api_tokens (user_id, name, token_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(user_id)
        .bind(name)
        .bind(token_hash)
        .bind(now)
        .written_row(&self.pool)
        .await?
        .try_get(0)?)
    }

    async fn list_api_tokens(&self, user_id: i64) -> Result<Vec<crate::domain::access::TokenRow>> {
        let rows = sqlx::query(crate::store::users::LIST_API_TOKENS)
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(crate::domain::access::TokenRow {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    async fn revoke_api_token(&self, user_id: i64, token_id: i64, now: Millis) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(token_id)
        .bind(user_id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn principal_by_token(&self, token_hash: &str) -> Result<Option<Principal>> {
        let Some(r) = sqlx::query(
            "SELECT u.id, u.username, u.org_id, u.roles, COALESCE(o.path, '') AS path \
             FROM api_tokens t JOIN users u ON u.id = t.user_id LEFT JOIN orgs o ON o.id = u.org_id \
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND NOT u.disabled",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
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

    async fn audit(&self, e: &AuditEntry, now: Millis) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (at, user_id, username, org_id, action, object, object_id, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(now)
        .bind(e.user_id)
        .bind(&e.username)
        .bind(e.org_id)
        .bind(e.action)
        .bind(e.object)
        .bind(e.object_id)
        .bind(e.detail.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_audit(
        &self,
        org_path: &str,
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditRow>> {
        let rows = sqlx::query(
            "SELECT id, at, user_id, username, org_id, action, object, object_id, detail FROM audit_log \
             WHERE ($1 = '' OR org_id IN (SELECT id FROM orgs WHERE path LIKE $1 || '%')) \
             AND id < $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(org_path)
        .bind(before_id.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_from).collect()
    }
}
