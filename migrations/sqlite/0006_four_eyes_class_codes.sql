-- Four eyes that holds, and class codes that belong to their school.

-- Everyone who edited a campaign (PATCH of its audience, content, channels or schedule). Whoever
-- changed what is approved may not approve it, like its creator and its submitter. Kept across
-- approval cycles: an edit stays in the content until the campaign is gone.
CREATE TABLE campaign_editors (
    campaign_id  INTEGER NOT NULL REFERENCES campaigns(id),
    user_id      INTEGER NOT NULL,
    edited_at    INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, user_id)
) WITHOUT ROWID;

-- Node codes were unique across the whole tree, so one school could block another's roster import
-- by creating a class with a code that import generates. Codes of schools, Phòng and Sở stay unique
-- across the tree (the CLI finds a school by its code); a class code is unique within its school.
-- SQLite cannot drop a UNIQUE column constraint, so the table is rebuilt. sqlx runs a SQLite
-- migration inside a transaction, where `PRAGMA foreign_keys = OFF` has no effect; with the foreign
-- keys deferred, dropping `orgs` counts each row that references it as a violation and copying the
-- rows back into the new `orgs` resolves them again before the commit checks.
PRAGMA defer_foreign_keys = ON;
CREATE TABLE orgs_copy AS SELECT id, parent_id, kind, code, name, path, created_at, self_approval,
    has_calendar, quiet_hours FROM orgs;
DROP TABLE orgs;
CREATE TABLE orgs (
    id            INTEGER PRIMARY KEY,
    parent_id     INTEGER REFERENCES orgs(id),
    kind          TEXT NOT NULL CHECK (kind IN ('ministry','province','district','school','class')),
    code          TEXT NOT NULL,
    name          TEXT NOT NULL,
    -- Materialised path of ids, '/1/4/9/': a subtree is a prefix match.
    path          TEXT NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    -- 1 = an approver may approve a campaign they created, submitted or edited (set from above the
    -- school).
    self_approval INTEGER NOT NULL DEFAULT 0,
    -- 1 when the node has its own calendar (possibly empty), overriding its ancestors'.
    has_calendar  INTEGER NOT NULL DEFAULT 0,
    -- "21:00-07:00" local; NULL = the nearest ancestor's, else the configured default.
    quiet_hours   TEXT
);
INSERT INTO orgs (id, parent_id, kind, code, name, path, created_at, self_approval, has_calendar,
    quiet_hours)
    SELECT id, parent_id, kind, code, name, path, created_at, self_approval, has_calendar, quiet_hours
    FROM orgs_copy ORDER BY id;
DROP TABLE orgs_copy;
CREATE INDEX orgs_parent ON orgs(parent_id);
CREATE INDEX orgs_path ON orgs(path);
CREATE UNIQUE INDEX orgs_code ON orgs(code) WHERE kind <> 'class';
CREATE UNIQUE INDEX orgs_class_code ON orgs(parent_id, code) WHERE kind = 'class';
