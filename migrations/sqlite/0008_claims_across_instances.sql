-- Several instances on one database. A stored webhook event is processed by the one instance that
-- claimed it (a lease, as for deliveries; taken over only once it lapsed), and a Zalo refresh token
-- is spent by the one instance holding that app's refresh lock (Zalo honours a refresh token once).
ALTER TABLE webhook_events ADD COLUMN lease_owner TEXT;
ALTER TABLE webhook_events ADD COLUMN lease_until INTEGER;
ALTER TABLE zalo_tokens ADD COLUMN refresh_owner TEXT;
ALTER TABLE zalo_tokens ADD COLUMN refresh_until INTEGER;
