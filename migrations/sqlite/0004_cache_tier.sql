-- The cache tier the apps put in front of this database, as the last app to
-- open the store recorded it: its kind and key prefix, never an address or
-- credentials. `sessionctl` reads it so that a command changing sessions
-- does not leave the apps serving the old copies from their cache.
CREATE TABLE session_cache_tier (
    singleton   INTEGER NOT NULL PRIMARY KEY CHECK (singleton = 1),
    kind        TEXT    NOT NULL,
    key_prefix  TEXT,
    recorded_at INTEGER NOT NULL
);
