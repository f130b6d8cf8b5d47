-- Time as part of a campaign: recurring schedules, series of templates, the school calendar, quiet
-- hours and urgent campaigns.

-- Recurring campaigns: the schedule (JSON domain::schedule::Recurrence), an ordered series of
-- templates (JSON array of ids; each run takes the next), the last slot the scheduler considered, and
-- 1 once no slot will fire any more (end date passed or series used up).
ALTER TABLE campaigns ADD COLUMN schedule TEXT;
ALTER TABLE campaigns ADD COLUMN series TEXT;
ALTER TABLE campaigns ADD COLUMN schedule_cursor INTEGER;
ALTER TABLE campaigns ADD COLUMN schedule_ended INTEGER NOT NULL DEFAULT 0;
-- 1 while staff hold the whole campaign: its runs are paused and no new slot fires.
ALTER TABLE campaigns ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;
-- 1 = delivered inside quiet hours too (set by approvers only).
ALTER TABLE campaigns ADD COLUMN urgent INTEGER NOT NULL DEFAULT 0;

-- Runs gain a `skipped` state (a slot missed beyond the grace period, or on a holiday) with its
-- reason, the template the run sends (a series advances run by run) and the slot's time. SQLite
-- cannot change a CHECK, so the table is rebuilt.
CREATE TABLE runs_new (
    id           INTEGER PRIMARY KEY,
    campaign_id  INTEGER NOT NULL REFERENCES campaigns(id),
    slot         TEXT NOT NULL,
    slot_at      INTEGER,
    state        TEXT NOT NULL CHECK (state IN ('pending','running','done','cancelled','skipped')),
    reason       TEXT,
    template_id  INTEGER,
    -- 1 while staff hold the run: nothing of it is claimed or fanned out.
    paused       INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    finished_at  INTEGER,
    UNIQUE (campaign_id, slot)
);
INSERT INTO runs_new (id, campaign_id, slot, state, created_at, finished_at)
    SELECT id, campaign_id, slot, state, created_at, finished_at FROM runs;
DROP TABLE runs;
ALTER TABLE runs_new RENAME TO runs;
CREATE INDEX runs_state ON runs(state);

-- A node's school calendar: term dates and holidays (local dates, inclusive). A node without one
-- uses its nearest ancestor's.
CREATE TABLE calendars (
    org_id      INTEGER NOT NULL REFERENCES orgs(id),
    kind        TEXT NOT NULL CHECK (kind IN ('term','holiday')),
    start_date  TEXT NOT NULL,   -- YYYY-MM-DD
    end_date    TEXT NOT NULL,
    name        TEXT NOT NULL
);
CREATE INDEX calendars_org ON calendars(org_id);
-- 1 when the node has its own calendar (possibly empty), overriding its ancestors'.
ALTER TABLE orgs ADD COLUMN has_calendar INTEGER NOT NULL DEFAULT 0;
-- "21:00-07:00" local; NULL = the nearest ancestor's, else the configured default.
ALTER TABLE orgs ADD COLUMN quiet_hours TEXT;
