-- The web pages' logins. A session is a random cookie value of which only the SHA-256 is kept (as for
-- API tokens); it ends at `idle_until` without a request, at `expires_at` whatever happens, or when
-- revoked (log out, password changed, an admin's revoke). `csrf` is the token every form of the
-- session must carry.
CREATE TABLE web_sessions (
    id_hash       TEXT PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users(id),
    csrf          TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    revoked_at    INTEGER
);
CREATE INDEX web_sessions_user ON web_sessions(user_id);

-- Failed logins counted per key ('user:<name>' and 'addr:<ip>') in a window that starts at the first
-- failure; a key over its limit is refused until the window ends. Kept in the database so that every
-- instance behind a load balancer counts the same failures.
CREATE TABLE login_throttle (
    key        TEXT PRIMARY KEY,
    failures   INTEGER NOT NULL,
    first_at   INTEGER NOT NULL
);

-- A roster uploaded on the import page waits here between its dry run and the confirmation (so the
-- confirmation may reach any instance); dropped once imported, or an hour later.
CREATE TABLE upload_stash (
    id_hash     TEXT PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id),
    org_id      INTEGER NOT NULL REFERENCES orgs(id),
    kind        TEXT,
    file_name   TEXT NOT NULL,
    bytes       BLOB NOT NULL,
    created_at  INTEGER NOT NULL
);
