-- Sessions are stored under a digest of their id, never the id itself
-- (src/id.rs: a key is 32 characters, an id 24), so a dump of this table
-- yields no usable cookie. Rows written before, or since by an app of an
-- older build, are still under their id: this partial index finds them
-- (it stays empty once none is left, and costs a key-shaped row nothing).
-- `sessionctl migrate`, or an app opening the database, moves them to
-- their key in batches. Building it reads the table once and holds off
-- writes meanwhile (seconds on millions of rows); waiting for the table's
-- lock gives up after 5 s (a long export holding it) rather than stall
-- the apps' queries queued behind: run it again.
SET LOCAL lock_timeout = '5s';
CREATE INDEX sessions_under_ids ON sessions (id) WHERE length(id) = 24;
