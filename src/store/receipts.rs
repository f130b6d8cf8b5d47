//! What providers tell Loa after a send: receipts, watermarks, stored webhook events, Zalo follow state and the Zalo token pair.

use super::*;

#[async_trait::async_trait]
pub trait ReceiptStore: Send + Sync {
    /// A delivery awaiting a receipt (sending or sent), for a failure report that needs the next
    /// channel; with `at`, only while the delivery is still on that attempt.
    async fn load_for_receipt(
        &self,
        id: i64,
        at: Option<crate::domain::delivery::AttemptRef>,
    ) -> Result<Option<Claimed>>;

    /// Moves a delivery forward on a receipt; false when it was not in a state that allows it, or
    /// (with `at`) has moved on from the attempt the receipt is about.
    async fn apply_receipt(
        &self,
        id: i64,
        at: Option<crate::domain::delivery::AttemptRef>,
        r: Receipt,
        now: Millis,
    ) -> Result<bool>;

    /// The Zalo token pair of an app, if any.
    async fn zalo_token(&self, app_id: &str) -> Result<Option<TokenPair>>;

    /// Stores the pair for an app unless one is stored (tokens from the config seed the first run
    /// only: after that the database holds the newest, single-use refresh token).
    async fn seed_zalo_token(&self, app_id: &str, pair: &TokenPair, now: Millis) -> Result<()>;

    /// Stores the pair for an app, replacing any (an operator's `loa zalo set-token`).
    async fn set_zalo_token(&self, app_id: &str, pair: &TokenPair, now: Millis) -> Result<()>;

    /// Takes the app's refresh lock until `until` if the stored refresh token is still `refresh` and
    /// nobody else holds the lock: only then may this process spend that token with Zalo. False if
    /// another process holds it (or already replaced the pair).
    async fn lock_zalo_refresh(
        &self,
        app_id: &str,
        refresh: &str,
        now: Millis,
        until: Millis,
    ) -> Result<bool>;

    /// Gives the refresh lock back (the refresh failed before Zalo took the token).
    async fn unlock_zalo_refresh(&self, app_id: &str) -> Result<()>;

    /// Replaces the pair only if the stored refresh token is still `old_refresh` (and releases the
    /// refresh lock); false otherwise.
    async fn replace_zalo_token(
        &self,
        app_id: &str,
        old_refresh: &str,
        pair: &TokenPair,
        now: Millis,
    ) -> Result<bool>;

    /// The delivery a provider message id names on a channel (see `DeliveryUpdate::receipt_by_provider_id`),
    /// only while that message is the delivery's current attempt: a report about an earlier channel
    /// or attempt names nothing.
    async fn delivery_by_ref(&self, channel: Channel, provider_ref: &str) -> Result<Option<i64>>;

    /// Moves every message sent on `channel` to the person with this address before `watermark`
    /// forward to `r` (Messenger watermarks); returns how many moved.
    async fn apply_watermark(
        &self,
        channel: Channel,
        address: &str,
        watermark: Millis,
        r: Receipt,
        now: Millis,
    ) -> Result<u64>;

    /// Records that the person with this Zalo user id follows (or no longer follows) the OA; returns
    /// how many contacts carry that id.
    async fn set_zalo_following(&self, user_id: &str, following: bool, now: Millis) -> Result<u64>;

    /// Stores a webhook event unless the same body was stored before; false for a replay.
    async fn insert_webhook_event(
        &self,
        provider: &str,
        digest: &str,
        body: &str,
        now: Millis,
    ) -> Result<bool>;

    /// Leases up to `limit` unprocessed events (oldest first) to this process until `lease_until`:
    /// those nobody holds, those whose lease lapsed (their holder died mid-event), and this process's
    /// own. Another instance running the same loop gets other events, so each is processed once.
    async fn claim_webhook_events(
        &self,
        limit: i64,
        now: Millis,
        lease_until: Millis,
    ) -> Result<Vec<WebhookEvent>>;

    async fn finish_webhook_event(&self, id: i64, outcome: EventOutcome, now: Millis)
    -> Result<()>;

    /// provider -> outcome (`pending` for unprocessed) -> count.
    async fn webhook_counts(&self) -> Result<BTreeMap<String, BTreeMap<String, i64>>>;
}
