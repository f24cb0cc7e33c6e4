-- One row per scheduled purge that a serve-cron replica claimed. The first
-- replica to insert a tick's row purges; every other replica finds the row
-- and skips that tick, however quickly the purge itself finished. Rows
-- older than a day are removed by the claims that follow them.
CREATE TABLE purge_ticks (
    tick       INTEGER NOT NULL PRIMARY KEY,
    claimed_by TEXT    NOT NULL,
    claimed_at INTEGER NOT NULL
);
