-- One row per session. Times are timestamptz (UTC).
--
-- id sorts bytewise (COLLATE "C"): cheap comparisons for the purge walk.
-- data is jsonb so operators can query it (`data ? 'cart'`) and the list
-- filter by key can use it.
--
-- No index on expires_at: the purge walks the primary key in id windows
-- (measured in the purge benchmark), and every save with a sliding expiry
-- would otherwise also update an index entry.
CREATE TABLE sessions (
    id         TEXT        COLLATE "C" NOT NULL PRIMARY KEY,
    data       JSONB       NOT NULL,
    user_id    TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    version    BIGINT      NOT NULL
);

-- Revocation by user: only rows that have a user are indexed.
CREATE INDEX sessions_user_id ON sessions (user_id) WHERE user_id IS NOT NULL;
