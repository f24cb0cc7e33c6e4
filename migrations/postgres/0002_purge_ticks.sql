-- One row per scheduled purge that a serve-cron replica claimed. The first
-- replica to insert a tick's row purges; every other replica finds the row
-- and skips that tick, however quickly the purge itself finished (an
-- advisory lock held only while purging let a second replica in after a
-- fast purge). Rows older than a day are removed by the claims that follow.
CREATE TABLE purge_ticks (
    tick       TIMESTAMPTZ NOT NULL PRIMARY KEY,
    claimed_by TEXT        NOT NULL,
    claimed_at TIMESTAMPTZ NOT NULL
);
