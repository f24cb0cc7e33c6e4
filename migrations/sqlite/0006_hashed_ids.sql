-- Sessions are stored under a digest of their id, never the id itself
-- (src/id.rs: the key is 32 characters, an id 24), so a copy of this table
-- yields no usable cookie. Rows written before are moved to their key by
-- `sessionctl migrate` after this step, in batches (SQLite has no SHA-256
-- in SQL), resumably: this table says whether any may be left. A table
-- without an id-shaped row has nothing to move.
CREATE TABLE session_ids_hashed (
    singleton INTEGER NOT NULL PRIMARY KEY CHECK (singleton = 1),
    done      INTEGER NOT NULL
);
INSERT INTO session_ids_hashed (singleton, done)
SELECT 1, NOT EXISTS (SELECT 1 FROM sessions WHERE length(id) = 24);
