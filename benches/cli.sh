#!/usr/bin/env bash
# `sessionctl show` and `list --limit 100` on a 1,000,000-row SQLite
# database, against sqlite3 answering the same query (the floor), whole
# process wall time with hyperfine. Needs: hyperfine, sqlite3 (Debian).
#
#   bash benches/cli.sh            # builds the release binary first
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-1000000}
cargo build --release --quiet
BIN=$PWD/target/release/sessionctl
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
DB=$WORK/sessions.db
URL="sqlite://$DB"

"$BIN" --database-url "$URL" migrate --quiet
# Random 24-character ids, ~200-byte data, expiries spread over ±7 days,
# one session in ten with a user.
sqlite3 "$DB" <<SQL
PRAGMA journal_mode = WAL;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $ROWS)
INSERT INTO sessions (id, data, user_id, created_at, updated_at, expires_at, version)
SELECT hex(randomblob(12)),
       json_object('cart', json_array('SKU-' || i, 'SKU-' || (i * 7)), 'n', i, 'csrf', hex(randomblob(60))),
       CASE WHEN i % 10 = 0 THEN 'user' || (i % 5000) END,
       1764000000000, 1764000000000,
       CAST(strftime('%s', 'now') AS INTEGER) * 1000 + (abs(random()) % 1209600000) - 604800000,
       1
FROM n;
SQL
ID=$(sqlite3 "$DB" "SELECT id FROM sessions LIMIT 1 OFFSET $((ROWS / 2))")
NOW=$(($(date +%s) * 1000))
echo "rows: $(sqlite3 "$DB" 'SELECT count(*) FROM sessions'); file: $(du -h "$DB" | cut -f1)"

hyperfine --warmup 3 --runs 30 -N \
    -n "sessionctl show" "$BIN --database-url $URL show $ID --output json" \
    -n "sqlite3 (floor)" "sqlite3 $DB \"SELECT id, data, user_id, created_at, updated_at, expires_at, version FROM sessions WHERE id = '$ID'\""

hyperfine --warmup 1 --runs 10 -N \
    -n "sessionctl list --limit 100" "$BIN --database-url $URL list --limit 100 --output json" \
    -n "sqlite3 (floor)" "sqlite3 $DB \"SELECT id, data, user_id, created_at, updated_at, expires_at, version FROM sessions ORDER BY expires_at, id LIMIT 100\"" \
    -n "sessionctl list --active --limit 100" "$BIN --database-url $URL list --active --limit 100 --output json" \
    -n "sqlite3 --active (floor)" "sqlite3 $DB \"SELECT id, data, user_id, created_at, updated_at, expires_at, version FROM sessions WHERE expires_at > $NOW ORDER BY expires_at, id LIMIT 100\""
