//! SQLite side of users, API tokens and the audit log.

use super::super::*;

#[async_trait::async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, u: &NewUser, now: Millis) -> Result<User> {
        self.do_create_user(u, now).await
    }

    async fn get_user(&self, id: i64) -> Result<User> {
        self.do_get_user(Some(id), None).await
    }

    async fn user_by_name(&self, username: &str) -> Result<User> {
        self.do_get_user(None, Some(username)).await
    }

    async fn list_users(&self, org_path: &str) -> Result<Vec<User>> {
        self.do_list_users(org_path).await
    }

    async fn password_hash(&self, username: &str) -> Result<Option<String>> {
        self.do_password_hash(username).await
    }

    async fn create_api_token(
        &self,
        user_id: i64,
        name: &str,
        token_hash: &str,
        now: Millis,
    ) -> Result<i64> {
        self.do_create_api_token(user_id, name, token_hash, now)
            .await
    }

    async fn list_api_tokens(&self, user_id: i64) -> Result<Vec<crate::domain::access::TokenRow>> {
        let rows = sqlx::query(crate::store::users::LIST_API_TOKENS)
            .bind(user_id)
            .fetch_all(&self.reader)
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
        self.do_revoke_api_token(user_id, token_id, now).await
    }

    async fn principal_by_token(&self, token_hash: &str) -> Result<Option<Principal>> {
        self.do_principal_by_token(token_hash).await
    }

    async fn audit(&self, e: &AuditEntry, now: Millis) -> Result<()> {
        self.do_audit(e, now).await
    }

    async fn list_audit(
        &self,
        org_path: &str,
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditRow>> {
        self.do_list_audit(org_path, before_id, limit).await
    }
}
