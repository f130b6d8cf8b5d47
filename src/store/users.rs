//! Users, API tokens and the audit log.

use super::*;

#[async_trait::async_trait]
pub trait UserStore: Send + Sync {
    async fn create_user(&self, u: &NewUser, now: Millis) -> Result<User>;

    async fn get_user(&self, id: i64) -> Result<User>;

    async fn user_by_name(&self, username: &str) -> Result<User>;

    /// Users of the nodes whose path starts with `org_path` ("" = all, operators included).
    async fn list_users(&self, org_path: &str) -> Result<Vec<User>>;

    /// The stored argon2 hash of a user's password, if any.
    async fn password_hash(&self, username: &str) -> Result<Option<String>>;

    /// Stores a token's hash for a user; returns the token's id.
    async fn create_api_token(
        &self,
        user_id: i64,
        name: &str,
        token_hash: &str,
        now: Millis,
    ) -> Result<i64>;

    /// A user's live tokens, newest first.
    async fn list_api_tokens(&self, user_id: i64) -> Result<Vec<crate::domain::access::TokenRow>>;

    /// Revokes a user's token; false if there was no such live token.
    async fn revoke_api_token(&self, user_id: i64, token_id: i64, now: Millis) -> Result<bool>;

    /// The enabled user a live token belongs to, with the path of their node.
    async fn principal_by_token(&self, token_hash: &str) -> Result<Option<Principal>>;

    async fn audit(&self, e: &AuditEntry, now: Millis) -> Result<()>;

    /// Entries about nodes whose path starts with `org_path` (operators: "" = everything, including
    /// entries about no node), newest first, before `before_id`.
    async fn list_audit(
        &self,
        org_path: &str,
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditRow>>;
}

/// The same text on both dialects.
pub(super) const LIST_API_TOKENS: &str = "SELECT id, name, created_at FROM api_tokens \
     WHERE user_id = $1 AND revoked_at IS NULL ORDER BY id DESC LIMIT 100";
