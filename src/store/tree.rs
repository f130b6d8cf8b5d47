//! The organisation tree: Sở, Phòng, schools and classes, and each node's approval policy.

use super::*;

#[async_trait::async_trait]
pub trait OrgStore: Send + Sync {
    async fn create_org(&self, o: &NewOrg, now: Millis) -> Result<Org>;

    async fn get_org(&self, id: i64) -> Result<Org>;

    async fn list_orgs(&self, parent_id: Option<i64>) -> Result<Vec<Org>>;

    /// Sets whether approvers of a node may approve their own campaigns.
    async fn set_self_approval(&self, org_id: i64, allowed: bool) -> Result<Org>;
}
