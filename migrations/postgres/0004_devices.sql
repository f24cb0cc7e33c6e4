-- What an app records of the device behind a session, when it enables
-- device tracking: when it was last seen (written at most once per
-- throttle interval, not on every read), its IP address and user agent.
-- Metadata beside the session, not part of its data or version. Nullable
-- columns without a default: added without rewriting the table. The
-- ALTER needs the table's exclusive lock for a moment, and every query of
-- the apps queues behind it while it waits for one: give up after 5 s (a
-- long export holding the table) rather than stall them; run it again.
SET LOCAL lock_timeout = '5s';
ALTER TABLE sessions ADD COLUMN last_seen_at TIMESTAMPTZ;
ALTER TABLE sessions ADD COLUMN client_ip TEXT;
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
