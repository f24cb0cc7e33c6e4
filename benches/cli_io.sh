#!/usr/bin/env bash
# `sessionctl export` and `import` on 1,000,000 sessions, beside sqlite3 and
# psql producing (or loading) the same JSON lines: whole-process wall time
# and peak RSS (GNU time). Needs sqlite3; the PostgreSQL half runs when
# PG_URL names an empty database it may fill (psql on PATH).
#
#   bash benches/cli_io.sh                                   # SQLite only
#   PG_URL=postgres://postgres@127.0.0.1:5432/bench bash benches/cli_io.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-1000000}
USER_EVERY=${USER_EVERY:-5}  # one session in USER_EVERY has a user id
[ "${BUILD:-1}" = 1 ] && cargo build --release --quiet --bin sessionctl
BIN=$PWD/target/release/sessionctl
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
SRC=$WORK/source.db

# "name seconds peak-MiB" for one command (stdout to $2, stdin from $3).
measure() {
    local name=$1 out=$2 in=$3
    shift 3
    /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" <"$in" >"$out"
    read -r seconds kib <"$WORK/time"
    printf '%-44s %8.2f s %8.1f MiB\n' "$name" "$seconds" "$(echo "$kib / 1024" | bc -l)"
}

"$BIN" --database-url "sqlite://$SRC" migrate --quiet
# Ids in the generator's alphabet, ~200-byte data, expiries over ±7 days,
# one session in $USER_EVERY with a user (default five).
sqlite3 "$SRC" <<SQL
PRAGMA journal_mode = WAL;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $ROWS)
INSERT INTO sessions (id, data, user_id, created_at, updated_at, expires_at, version)
SELECT substr(replace(replace(replace(hex(randomblob(12)), '0', 'g'), '1', 'h'), '2', 'i') || hex(randomblob(12)), 1, 32),
       json_object('cart', json_array('SKU-' || i, 'SKU-' || (i * 7)), 'n', i, 'csrf', hex(randomblob(60))),
       CASE WHEN i % $USER_EVERY = 0 THEN 'user' || (i % 50000) END,
       1764000000000, 1764000000000,
       CAST(strftime('%s', 'now') AS INTEGER) * 1000 + (abs(random()) % 1209600000) - 604800000,
       1
FROM n;
SQL
echo "rows: $(sqlite3 "$SRC" 'SELECT count(*) FROM sessions'); file: $(du -h "$SRC" | cut -f1)"

iso() { echo "strftime('%Y-%m-%dT%H:%M:%fZ', $1 / 1000.0, 'unixepoch')"; }
FLOOR_EXPORT="SELECT json_object('id', id, 'user_id', user_id, 'created_at', $(iso created_at), 'updated_at', $(iso updated_at), 'expires_at', $(iso expires_at), 'version', version, 'data', json(data)) FROM sessions ORDER BY id"
ms() { echo "CAST(round((julianday(json_extract(value, '\$.$1')) - 2440587.5) * 86400000) AS INTEGER)"; }
FLOOR_IMPORT="INSERT INTO sessions (id, data, user_id, created_at, updated_at, expires_at, version)
SELECT json_extract(value, '\$.id'), json(json_extract(value, '\$.data')), json_extract(value, '\$.user_id'),
       $(ms created_at), $(ms updated_at), $(ms expires_at), json_extract(value, '\$.version')
FROM json_each('[' || rtrim(replace(CAST(readfile('$WORK/ours.jsonl') AS TEXT), char(10), ','), ',') || ']')"

echo
echo "== SQLite, $ROWS rows =="
measure "sqlite3 export (floor)" "$WORK/floor.jsonl" /dev/null sqlite3 "$SRC" "$FLOOR_EXPORT"
measure "sessionctl export" "$WORK/ours.jsonl" /dev/null "$BIN" --database-url "sqlite://$SRC" export --quiet
echo "lines: floor $(wc -l <"$WORK/floor.jsonl"), ours $(wc -l <"$WORK/ours.jsonl")"
for who in floor ours; do
    "$BIN" --database-url "sqlite://$WORK/$who.db" migrate --quiet
done
measure "sqlite3 import (floor: json_each over the file)" /dev/null /dev/null sqlite3 "$WORK/floor.db" "$FLOOR_IMPORT"
measure "sessionctl import" /dev/null /dev/null "$BIN" --database-url "sqlite://$WORK/ours.db" import --quiet "$WORK/ours.jsonl"
echo "rows: floor $(sqlite3 "$WORK/floor.db" 'SELECT count(*) FROM sessions'), ours $(sqlite3 "$WORK/ours.db" 'SELECT count(*) FROM sessions')"

[ -n "${PG_URL:-}" ] || exit 0
echo
echo "== PostgreSQL, $ROWS rows =="
"$BIN" --database-url "$PG_URL" migrate --quiet
psql -q "$PG_URL" -c "TRUNCATE sessions" -c "CREATE UNLOGGED TABLE IF NOT EXISTS bench_lines (line text)" -c "TRUNCATE bench_lines"
measure "sessionctl import" /dev/null /dev/null "$BIN" --database-url "$PG_URL" import --quiet "$WORK/ours.jsonl"
PG_FLOOR_IMPORT="BEGIN;
TRUNCATE sessions;
\\copy bench_lines (line) FROM '$WORK/ours.jsonl' WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')
INSERT INTO sessions (id, data, user_id, created_at, updated_at, expires_at, version)
SELECT j->>'id', j->'data', j->>'user_id', (j->>'created_at')::timestamptz, (j->>'updated_at')::timestamptz,
       (j->>'expires_at')::timestamptz, (j->>'version')::bigint
FROM (SELECT line::jsonb AS j FROM bench_lines) AS t;
TRUNCATE bench_lines;
COMMIT;"
echo "$PG_FLOOR_IMPORT" >"$WORK/floor_import.sql"
measure "psql \\copy + INSERT … SELECT (floor)" /dev/null /dev/null psql -q "$PG_URL" -f "$WORK/floor_import.sql"
pg_iso() { echo "to_char($1 AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"; }
PG_FLOOR_EXPORT="COPY (SELECT json_build_object('id', id, 'user_id', user_id, 'created_at', $(pg_iso created_at), 'updated_at', $(pg_iso updated_at), 'expires_at', $(pg_iso expires_at), 'version', version, 'data', data) FROM sessions ORDER BY id) TO STDOUT"
measure "psql COPY … TO STDOUT export (floor)" "$WORK/pg_floor.jsonl" /dev/null psql -q "$PG_URL" -c "$PG_FLOOR_EXPORT"
measure "sessionctl export" "$WORK/pg_ours.jsonl" /dev/null "$BIN" --database-url "$PG_URL" export --quiet
echo "lines: floor $(wc -l <"$WORK/pg_floor.jsonl"), ours $(wc -l <"$WORK/pg_ours.jsonl")"
psql -q "$PG_URL" -c "DROP TABLE bench_lines"
