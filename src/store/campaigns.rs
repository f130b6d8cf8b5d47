//! Templates, the shared library, campaigns and their approval moves.

use super::*;

#[async_trait::async_trait]
pub trait CampaignStore: Send + Sync {
    async fn create_template(
        &self,
        t: &NewTemplate,
        created_by: Option<i64>,
        now: Millis,
    ) -> Result<Template>;

    async fn get_template(&self, id: i64) -> Result<Template>;

    /// Puts a template in the shared library with topic tags; false if it was already there.
    async fn publish_template(
        &self,
        id: i64,
        by: i64,
        topics: &[String],
        now: Millis,
    ) -> Result<bool>;

    /// Library templates a node at `user_path` may use: those published at that node or above it
    /// ("" = every published template), optionally with a topic.
    async fn library(&self, user_path: &str, topic: Option<&str>) -> Result<Vec<Template>>;

    /// The newest `limit` templates of the nodes whose path starts with `org_path`.
    async fn list_templates(&self, org_path: &str, limit: i64) -> Result<Vec<Template>>;

    async fn create_campaign(
        &self,
        c: &NewCampaign,
        created_by: Option<i64>,
        now: Millis,
    ) -> Result<Campaign>;

    /// Replaces a campaign's editable fields if it is in one of `from` and was last changed at
    /// `expected_updated_at`; it returns to draft and loses any approval, and `editor` is recorded
    /// among its editors (who may not approve it). False otherwise.
    async fn update_campaign(
        &self,
        id: i64,
        c: &NewCampaign,
        from: &[CampaignState],
        expected_updated_at: Millis,
        editor: i64,
        now: Millis,
    ) -> Result<bool>;

    /// The users who ever edited a campaign (by `update_campaign`), in id order.
    async fn campaign_editors(&self, id: i64) -> Result<Vec<i64>>;

    /// Draft or rejected -> submitted, by a user.
    async fn submit_campaign(&self, id: i64, by: i64, now: Millis) -> Result<bool>;

    /// Submitted -> approved with the frozen content and its hash, if the campaign was last changed
    /// at `expected_updated_at` (what the approver saw is what gets approved).
    async fn approve_campaign(
        &self,
        id: i64,
        by: i64,
        expected_updated_at: Millis,
        snapshot: &serde_json::Value,
        hash: &str,
        now: Millis,
    ) -> Result<bool>;

    /// Submitted -> rejected with a reason.
    async fn reject_campaign(&self, id: i64, reason: &str, now: Millis) -> Result<bool>;

    /// Back to draft without approval, from one of `from` (content found changed after approval).
    async fn revoke_approval(&self, id: i64, from: &[CampaignState], now: Millis) -> Result<bool>;

    async fn get_campaign(&self, id: i64) -> Result<Campaign>;

    /// Campaigns of the nodes whose path starts with `org_path`, optionally of one node only.
    async fn list_campaigns(&self, org_path: &str, org_id: Option<i64>) -> Result<Vec<Campaign>>;

    /// Moves a campaign to `to` if it is in one of `from`; false when it was not.
    async fn transition_campaign(
        &self,
        id: i64,
        from: &[CampaignState],
        to: CampaignState,
        now: Millis,
    ) -> Result<bool>;

    /// Scheduled campaigns whose time has come.
    async fn due_campaigns(&self, now: Millis) -> Result<Vec<i64>>;

    /// Marks the campaign cancelled, its open runs cancelled and every unsent delivery cancelled.
    async fn cancel_campaign(&self, id: i64, now: Millis) -> Result<u64>;
}

/// The same text on both dialects (`$n` placeholders; `||` concatenates on both).
pub(super) const LIST_TEMPLATES: &str = "SELECT t.* FROM templates t JOIN orgs o ON o.id = t.org_id \
     WHERE o.path LIKE $1 || '%' ORDER BY t.id DESC LIMIT $2";
