-- Governance: users, API tokens, the audit log, per-node approval policy, campaign approval and the
-- shared content library.

-- A user belongs to one node (NULL = an operator of the whole installation) and acts on its subtree.
CREATE TABLE users (
    id             INTEGER PRIMARY KEY,
    org_id         INTEGER REFERENCES orgs(id),
    username       TEXT NOT NULL UNIQUE,
    full_name      TEXT NOT NULL,
    roles          TEXT NOT NULL,      -- comma list of admin, author, approver, viewer
    -- argon2id PHC string, for the web pages; NULL = API tokens only.
    password_hash  TEXT,
    disabled       INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL
);
CREATE INDEX users_org ON users(org_id);

-- API tokens are 256-bit random strings shown once; only their SHA-256 is kept.
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id),
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);

-- Who did what to which object of which node, and when. Append-only.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    user_id     INTEGER,
    username    TEXT NOT NULL,
    org_id      INTEGER,            -- the node the object belongs to
    action      TEXT NOT NULL,      -- campaign.approve, contact.erase, ...
    object      TEXT NOT NULL,      -- campaign, contact, template, user, ...
    object_id   INTEGER,
    detail      TEXT                -- JSON, never personal data
);
CREATE INDEX audit_log_org ON audit_log(org_id, id);

-- 1 = an approver may approve a campaign they created or submitted (set from above the node).
ALTER TABLE orgs ADD COLUMN self_approval INTEGER NOT NULL DEFAULT 0;

ALTER TABLE templates ADD COLUMN created_by INTEGER;
-- Published to the shared library: every node below may use it unedited.
ALTER TABLE templates ADD COLUMN published_at INTEGER;
ALTER TABLE templates ADD COLUMN published_by INTEGER;
ALTER TABLE templates ADD COLUMN topics TEXT;           -- JSON array of topic tags
CREATE INDEX templates_published ON templates(org_id) WHERE published_at IS NOT NULL;

ALTER TABLE campaigns ADD COLUMN created_by INTEGER;
ALTER TABLE campaigns ADD COLUMN submitted_by INTEGER;
ALTER TABLE campaigns ADD COLUMN approved_by INTEGER;
ALTER TABLE campaigns ADD COLUMN approved_at INTEGER;
-- The frozen content the approver saw (JSON approval::Snapshot) and the SHA-256 of what it was
-- computed from; every door that sends checks the hash against the campaign as it is.
ALTER TABLE campaigns ADD COLUMN approval TEXT;
ALTER TABLE campaigns ADD COLUMN approval_hash TEXT;
ALTER TABLE campaigns ADD COLUMN rejection_reason TEXT;
