-- The delivery core: org tree, contacts, guardian links, templates, campaigns, runs, deliveries.
-- Times are Unix milliseconds (INTEGER).

CREATE TABLE orgs (
    id          INTEGER PRIMARY KEY,
    parent_id   INTEGER REFERENCES orgs(id),
    kind        TEXT NOT NULL CHECK (kind IN ('ministry','province','district','school','class')),
    code        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    -- Materialised path of ids, '/1/4/9/': a subtree is a prefix match.
    path        TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
);
CREATE INDEX orgs_parent ON orgs(parent_id);
CREATE INDEX orgs_path ON orgs(path);

CREATE TABLE contacts (
    id             INTEGER PRIMARY KEY,
    org_id         INTEGER NOT NULL REFERENCES orgs(id),
    -- Nearest school at or above org_id (NULL for people of a Phòng or Sở): reports group by it.
    school_id      INTEGER REFERENCES orgs(id),
    role           TEXT NOT NULL CHECK (role IN ('parent','student','staff')),
    full_name      TEXT NOT NULL,
    phone          TEXT,
    email          TEXT,
    zalo_user_id   TEXT,
    facebook_psid  TEXT,
    student_code   TEXT,
    -- 0 after the person unfollowed the school's Zalo OA (a `follow` event sets it back): OA messages
    -- cannot reach them then, ZNS still can.
    zalo_following INTEGER NOT NULL DEFAULT 1,
    -- Where the consent to message this person comes from (`roster_import`, `form`, `api`, ...) and
    -- when it was given.
    consent_source TEXT,
    consent_at     INTEGER,
    -- One bit per channel the person has stopped (email 1, sms 2, zalo 4, messenger 8).
    opt_out        INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX contacts_org_role ON contacts(org_id, role);
-- Imports find a school's parents again by phone or email.
CREATE INDEX contacts_school_phone ON contacts(school_id, phone) WHERE phone IS NOT NULL;
CREATE INDEX contacts_school_email ON contacts(school_id, email) WHERE email IS NOT NULL;
-- Webhooks name people by their Zalo user id or Messenger PSID.
CREATE INDEX contacts_zalo_user ON contacts(zalo_user_id) WHERE zalo_user_id IS NOT NULL;
CREATE INDEX contacts_facebook_psid ON contacts(facebook_psid) WHERE facebook_psid IS NOT NULL;
CREATE UNIQUE INDEX contacts_student_code ON contacts(school_id, student_code) WHERE student_code IS NOT NULL;

CREATE TABLE guardian_links (
    parent_id   INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    student_id  INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    relation    TEXT,
    PRIMARY KEY (parent_id, student_id)
);
CREATE INDEX guardian_links_student ON guardian_links(student_id);

CREATE TABLE templates (
    id              INTEGER PRIMARY KEY,
    org_id          INTEGER NOT NULL REFERENCES orgs(id),
    name            TEXT NOT NULL,
    email_subject   TEXT,
    email_text      TEXT,
    email_html      TEXT,
    sms_text        TEXT,
    zalo_text       TEXT,
    messenger_text  TEXT,
    zns             TEXT,            -- JSON domain::campaign::ZnsTemplate
    zalo_transaction TEXT,           -- JSON domain::campaign::ZaloTransactionTemplate
    created_at      INTEGER NOT NULL
);

-- Zalo OAuth token pair per app. The refresh token is single-use: a refresh replaces the row only if
-- it still holds the refresh token that was spent (compare-and-swap), in the same statement.
CREATE TABLE zalo_tokens (
    app_id         TEXT PRIMARY KEY,
    access_token   TEXT NOT NULL,
    refresh_token  TEXT NOT NULL,
    expires_at     INTEGER NOT NULL,   -- Unix ms; 0 = unknown
    updated_at     INTEGER NOT NULL
);

CREATE TABLE campaigns (
    id           INTEGER PRIMARY KEY,
    org_id       INTEGER NOT NULL REFERENCES orgs(id),
    name         TEXT NOT NULL,
    template_id  INTEGER NOT NULL REFERENCES templates(id),
    audience     TEXT NOT NULL,   -- JSON domain::campaign::Audience
    channels     TEXT NOT NULL,   -- JSON array, order of preference
    messenger_tag TEXT,           -- Messenger message tag; NULL = CONFIRMED_EVENT_UPDATE
    state        TEXT NOT NULL,
    send_at      INTEGER,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX campaigns_state ON campaigns(state, send_at);

-- One run per firing of a campaign. pending = audience still being fanned out.
CREATE TABLE runs (
    id           INTEGER PRIMARY KEY,
    campaign_id  INTEGER NOT NULL REFERENCES campaigns(id),
    slot         TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('pending','running','done','cancelled')),
    created_at   INTEGER NOT NULL,
    finished_at  INTEGER,
    UNIQUE (campaign_id, slot)
);
CREATE INDEX runs_state ON runs(state);

-- No REFERENCES here: they would be checked on each of a million inserts at fan-out, and the fan-out
-- takes run and person from rows it has just read. Erasing a person anonymises their deliveries
-- explicitly (contact_id NULL, vars emptied) rather than through a cascade.
CREATE TABLE deliveries (
    id                   INTEGER PRIMARY KEY,
    run_id               INTEGER NOT NULL,
    campaign_id          INTEGER NOT NULL,
    contact_id           INTEGER,
    -- The school (or office) the person was reached through, for per-school reports.
    org_id               INTEGER NOT NULL,
    channel              TEXT,
    channel_index        INTEGER NOT NULL DEFAULT 0,
    state                TEXT NOT NULL,
    attempts             INTEGER NOT NULL DEFAULT 0,
    next_attempt_at      INTEGER NOT NULL,
    lease_until          INTEGER,
    provider_message_id  TEXT,
    segments             INTEGER,
    reason_code          TEXT,
    reason               TEXT,
    vars                 TEXT NOT NULL,   -- JSON render::PersonVars
    -- When the provider accepted it (Messenger read/delivery watermarks cover what was sent before).
    sent_at              INTEGER,
    updated_at           INTEGER NOT NULL,
    UNIQUE (run_id, contact_id)
);
-- No index here has `state` as a column: every send changes a delivery's state two or three times,
-- and each such index would be rewritten each time. Partial indexes hold only the rows in play.
-- The dispatcher's work list and its leases; settled deliveries leave them.
CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE state IN ('queued','retrying');
CREATE INDEX deliveries_leased ON deliveries(lease_until) WHERE state = 'sending';
-- A run is finished when it has no open delivery.
CREATE INDEX deliveries_open ON deliveries(run_id) WHERE state IN ('queued','sending','retrying');
-- Reports, listings (paged by id) and cancellation, per campaign.
CREATE INDEX deliveries_campaign ON deliveries(campaign_id, id);

-- Messenger receipts name every earlier message to a person: its sent deliveries, by person.
CREATE INDEX deliveries_messenger_unread ON deliveries(contact_id, sent_at)
    WHERE channel = 'messenger' AND state IN ('sent','delivered');

-- Provider message ids that receipts will name (Zalo OA msg_id, Messenger mid, SpeedSMS tranId).
-- Only providers whose receipts carry nothing of ours get a row, so other sends pay nothing.
CREATE TABLE receipt_refs (
    channel      TEXT NOT NULL,
    ref          TEXT NOT NULL,
    delivery_id  INTEGER NOT NULL,
    PRIMARY KEY (channel, ref)
) WITHOUT ROWID;

-- Each channel a delivery left for the next one, with why: the per-channel report counts these as
-- that channel's failures (the delivery itself now shows the channel it moved to).
CREATE TABLE channel_fallbacks (
    campaign_id  INTEGER NOT NULL,
    channel      TEXT NOT NULL,
    reason_code  TEXT NOT NULL,
    n            INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, channel, reason_code)
) WITHOUT ROWID;
CREATE TRIGGER deliveries_fell_back AFTER UPDATE OF channel ON deliveries
    WHEN OLD.channel IS NOT NULL AND NEW.channel IS NOT OLD.channel
BEGIN
    INSERT INTO channel_fallbacks (campaign_id, channel, reason_code, n)
    VALUES (NEW.campaign_id, OLD.channel, COALESCE(NEW.reason_code, 'unknown'), 1)
    ON CONFLICT (campaign_id, channel, reason_code) DO UPDATE SET n = n + 1;
END;

-- A channel stopped for one campaign because every send would fail the same way (template refused,
-- wrong key, no balance): its deliveries wait, unclaimed, until staff resume or skip the channel.
CREATE TABLE channel_pauses (
    campaign_id  INTEGER NOT NULL,
    channel      TEXT NOT NULL,
    reason       TEXT NOT NULL,
    paused_at    INTEGER NOT NULL,
    -- 1 once staff chose to move the waiting people on to their next channel instead.
    skip         INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, channel)
) WITHOUT ROWID;

-- Webhook events as received (signature already checked), processed after the 200 is sent. The
-- digest makes a replayed event a no-op.
CREATE TABLE webhook_events (
    id            INTEGER PRIMARY KEY,
    provider      TEXT NOT NULL,
    digest        TEXT NOT NULL,
    body          TEXT NOT NULL,
    received_at   INTEGER NOT NULL,
    processed_at  INTEGER,
    -- applied | unknown (names no message or person we know) | ignored (event we do not use)
    outcome       TEXT,
    UNIQUE (provider, digest)
);
CREATE INDEX webhook_events_pending ON webhook_events(id) WHERE processed_at IS NULL;

CREATE TABLE settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
