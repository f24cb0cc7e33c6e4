-- What an app records of the device behind a session, when it enables
-- device tracking: when it was last seen (written at most once per
-- throttle interval, not on every read), its IP address and user agent.
-- Metadata beside the session, not part of its data or version. Nullable
-- columns without a default: added without rewriting the table.
ALTER TABLE sessions ADD COLUMN last_seen_at TIMESTAMPTZ;
ALTER TABLE sessions ADD COLUMN client_ip TEXT;
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
