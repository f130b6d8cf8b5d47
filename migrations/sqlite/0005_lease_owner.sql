-- A lease only expires for a process that died: each claim records which process holds it, and each
-- running process keeps its row in `instances` alive. An expired lease is taken over only when its
-- holder's row has lapsed too (or it has none: work claimed before this migration).
ALTER TABLE deliveries ADD COLUMN lease_owner TEXT;
CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    started_at INTEGER NOT NULL,
    alive_until INTEGER NOT NULL
);
