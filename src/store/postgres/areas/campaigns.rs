//! PostgreSQL side of the campaigns area (not yet ported: each method says so).
#![allow(unused_variables)]

use super::super::*;

#[async_trait::async_trait]
impl CampaignStore for PgStore {
    async fn create_template(
        &self,
        t: &NewTemplate,
        created_by: Option<i64>,
        now: Millis,
    ) -> Result<Template> {
        Err(not_ported("create_template"))
    }

    async fn get_template(&self, id: i64) -> Result<Template> {
        Err(not_ported("get_template"))
    }

    async fn publish_template(
        &self,
        id: i64,
        by: i64,
        topics: &[String],
        now: Millis,
    ) -> Result<bool> {
        Err(not_ported("publish_template"))
    }

    async fn library(&self, user_path: &str, topic: Option<&str>) -> Result<Vec<Template>> {
        Err(not_ported("library"))
    }

    async fn create_campaign(
        &self,
        c: &NewCampaign,
        created_by: Option<i64>,
        now: Millis,
    ) -> Result<Campaign> {
        Err(not_ported("create_campaign"))
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
        Err(not_ported("update_campaign"))
    }

    async fn campaign_editors(&self, id: i64) -> Result<Vec<i64>> {
        Err(not_ported("campaign_editors"))
    }

    async fn submit_campaign(&self, id: i64, by: i64, now: Millis) -> Result<bool> {
        Err(not_ported("submit_campaign"))
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
        Err(not_ported("approve_campaign"))
    }

    async fn reject_campaign(&self, id: i64, reason: &str, now: Millis) -> Result<bool> {
        Err(not_ported("reject_campaign"))
    }

    async fn revoke_approval(&self, id: i64, from: &[CampaignState], now: Millis) -> Result<bool> {
        Err(not_ported("revoke_approval"))
    }

    async fn get_campaign(&self, id: i64) -> Result<Campaign> {
        Err(not_ported("get_campaign"))
    }

    async fn list_campaigns(&self, org_path: &str, org_id: Option<i64>) -> Result<Vec<Campaign>> {
        Err(not_ported("list_campaigns"))
    }

    async fn transition_campaign(
        &self,
        id: i64,
        from: &[CampaignState],
        to: CampaignState,
        now: Millis,
    ) -> Result<bool> {
        Err(not_ported("transition_campaign"))
    }

    async fn due_campaigns(&self, now: Millis) -> Result<Vec<i64>> {
        Err(not_ported("due_campaigns"))
    }

    async fn cancel_campaign(&self, id: i64, now: Millis) -> Result<u64> {
        Err(not_ported("cancel_campaign"))
    }
}
