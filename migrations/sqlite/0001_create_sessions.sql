-- One row per session. Times are Unix milliseconds, UTC.
--
-- WITHOUT ROWID: the random text id is the clustering key, so a lookup is one
-- B-tree descent and purge can walk the table in id windows.
--
-- No index on expires_at: with random ids and sliding expiry every session
-- save would also move an index entry, and the purge walks the primary key
-- in windows instead (measured in the purge benchmark).
CREATE TABLE sessions (
    id         TEXT    NOT NULL PRIMARY KEY,
    data       TEXT    NOT NULL,
    user_id    TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    version    INTEGER NOT NULL
) WITHOUT ROWID;

-- Revocation by user: only rows that have a user are indexed.
CREATE INDEX sessions_user_id ON sessions (user_id) WHERE user_id IS NOT NULL;
