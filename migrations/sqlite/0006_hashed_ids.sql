-- Sessions are stored under a digest of their id, never the id itself
-- (src/id.rs: a key is 32 characters, an id 24), so a copy of this table
-- yields no usable cookie. Rows written before, or since by an app of an
-- older build, are still under their id: this partial index finds them
-- (it stays empty once none is left, and costs a key-shaped row nothing).
-- `sessionctl migrate`, or an app opening the database, moves them to
-- their key in batches (SQLite has no SHA-256 in SQL).
CREATE INDEX sessions_under_ids ON sessions (id) WHERE length(id) = 24;
