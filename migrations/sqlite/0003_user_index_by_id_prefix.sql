-- The user index, keyed by the id's first two characters before the user id.
--
-- Ids are random, so an index on the user id alone is in no relation to the
-- primary key: each purge batch (a window of the primary key) deleted its
-- rows' entries from ~1,000 random pages of that index, and the next batch
-- wrote most of those pages again. On ten million rows with 20% logged in,
-- that made the purge 2.6x a raw DELETE (67 s against 25 s). With the id's
-- prefix first, a window's entries sit together (a window spans a few of
-- the ~4,000 prefixes), and the purge writes each index page about once.
--
-- Finding a user's sessions becomes one seek per prefix present (a
-- recursive skip over the index, 20-30 ms on ten million rows); see
-- USER_IDS in src/store/sqlite.rs. Measured in BENCHMARKS.md (issue #15).
DROP INDEX IF EXISTS sessions_user_id;
CREATE INDEX sessions_user_id ON sessions (substr(id, 1, 2), user_id) WHERE user_id IS NOT NULL;
