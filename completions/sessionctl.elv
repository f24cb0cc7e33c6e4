
use builtin;
use str;

set edit:completion:arg-completer[sessionctl] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'sessionctl'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'sessionctl'= {
            cand --database-url 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]'
            cand --redis-url 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one'
            cand --redis-prefix 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]'
            cand --secret-file 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand --database-timeout 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk'
            cand --no-cache 'Change sessions in the database alone, accepting that the apps'' cache serves its old copies until they expire'
            cand --ignore-not-found 'Exit 0 when no session or user matched (for scripts; the default is exit 3)'
            cand -q 'Print only errors (and the data asked for)'
            cand --quiet 'Print only errors (and the data asked for)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand show 'Show one session: metadata, which tiers hold it, its data'
            cand list 'List sessions, by expiry'
            cand stats 'Counts, sizes and expiry range of all sessions'
            cand edit 'Change a session''s data (with --set/--unset/--replace, or in $EDITOR)'
            cand expire 'Expire sessions now, in both tiers'
            cand delete 'Delete sessions in both tiers'
            cand revoke 'Delete every session of a user'
            cand regenerate 'Move a session to a new id (same data), removing the old one'
            cand export 'Write sessions as JSON lines, one per line'
            cand import 'Read sessions from JSON lines (as written by export)'
            cand purge-expired 'Delete expired sessions in short batches (safe to interrupt and rerun)'
            cand serve-cron 'Run the purge on a cron schedule, as a daemon (one leader across replicas)'
            cand migrate 'Create or upgrade the session schema'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'sessionctl;show'= {
            cand --database-url 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]'
            cand --redis-url 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one'
            cand --redis-prefix 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]'
            cand --secret-file 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand --database-timeout 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk'
            cand --no-cache 'Change sessions in the database alone, accepting that the apps'' cache serves its old copies until they expire'
            cand --ignore-not-found 'Exit 0 when no session or user matched (for scripts; the default is exit 3)'
            cand -q 'Print only errors (and the data asked for)'
            cand --quiet 'Print only errors (and the data asked for)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'sessionctl;list'= {
            cand --user 'Only this user''s sessions'
            cand --key 'Only sessions whose data has this top-level key'
            cand --limit 'At most this many sessions'
            cand --database-url 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]'
            cand --redis-url 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one'
            cand --redis-prefix 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]'
            cand --secret-file 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand --database-timeout 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk'
            cand --active 'Only sessions that have not expired'
            cand --expired 'Only expired sessions (not purged yet)'
            cand --no-cache 'Change sessions in the database alone, accepting that the apps'' cache serves its old copies until they expire'
            cand --ignore-not-found 'Exit 0 when no session or user matched (for scripts; the default is exit 3)'
            cand -q 'Print only errors (and the data asked for)'
            cand --quiet 'Print only errors (and the data asked for)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'sessionctl;stats'= {
            cand --sample 'Rows in the sample; tables of up to ten times this are read whole'
            cand --database-url 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]'
            cand --redis-url 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one'
            cand --redis-prefix 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]'
            cand --secret-file 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand --database-timeout 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk'
            cand --exact 'Read every row (a progress bar on a terminal) instead of estimating a large table''s counts and distributions from a sample'
            cand --no-cache 'Change sessions in the database alone, accepting that the apps'' cache serves its old copies until they expire'
            cand --ignore-not-found 'Exit 0 when no session or user matched (for scripts; the default is exit 3)'
            cand -q 'Print only errors (and the data asked for)'
            cand --quiet 'Print only errors (and the data asked for)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'sessionctl;edit'= {
            cand --set 'Set KEY to a JSON value (repeatable), e.g. --set ''cart=["book"]'' --set theme=''"dark"'''
            cand --unset 'Remove KEY (repeatable)'
            cand --replace 'Replace all the data with the JSON object in FILE (''-'' for stdin)'
            cand --database-url 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]'
            cand --redis-url 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one'
            cand --redis-prefix 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]'
            cand --secret-file 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand --database-timeout 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk'
            cand --no-cache 'Change sessions in the database alone, accepting that the apps'' cache serves its old copies until they expire'
            cand --ignore-not-found 'Exit 0 when no session or user matched (for scripts; the default is exit 3)'
            cand -q 'Print only errors (and the data asked for)'
            cand --quiet 'Print only errors (and the data asked for)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'sessionctl;expire'= {
            cand --user 'Every live session of this user instead'
            cand --database-url 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]'
            cand --redis-url 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one'
            cand --redis-prefix 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]'
            cand --secret-file 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand --database-timeout 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk'
            cand --no-cache 'Change sessions in the database alone, accepting that the apps'' cache serves its old copies until they expire'
            cand --ignore-not-found 'Exit 0 when no session or user matched (for scripts; the default is exit 3)'
            cand -q 'Print only errors (and the data asked for)'
            cand --quiet 'Print only errors (and the data asked for)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'sessionctl;delete'= {
            cand --database-url 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]'
            cand --redis-url 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one'
            cand --redis-prefix 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]'
            cand --secret-file 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand --database-timeout 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk'
            cand -y 'Do not ask for confirmation'
            cand --yes 'Do not ask for confirmation'
            cand --dry-run 'Say what would be deleted, delete nothing'
            cand --no-cache 'Change sessions in the database alone, accepting that the apps'' cache serves its old copies until they expire'
            cand --ignore-not-found 'Exit 0 when no session or user matched (for scripts; the default is exit 3)'
            cand -q 'Print only errors (and the data asked for)'
            cand --quiet 'Print only errors (and the data asked for)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'sessionctl;revoke'= {
            cand --user 'The user whose sessions go'
            cand --except 'Keep this session of the user, by id, stored key or cookie ("log out other devices"): every other one goes, in one statement'
            cand --database-url 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]'
            cand --redis-url 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one'
            cand --redis-prefix 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]'
            cand --secret-file 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand --database-timeout 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk'
            cand -y 'Do not ask for confirmation'
            cand --yes 'Do not ask for confirmation'
            cand --dry-run 'Count what would be revoked, revoke nothing'
            cand --no-cache 'Change sessions in the database alone, accepting that the apps'' cache serves its old copies until they expire'
            cand --ignore-not-found 'Exit 0 when no session or user matched (for scripts; the default is exit 3)'
            cand -q 'Print only errors (and the data asked for)'
            cand --quiet 'Print only errors (and the data asked for)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'sessionctl;regenerate'= {
            cand --database-url 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]'
            cand --redis-url 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one'
            cand --redis-prefix 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]'
            cand --secret-file 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand --database-timeout 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk'
            cand --no-cache 'Change sessions in the database alone, accepting that the apps'' cache serves its old copies until they expire'
            cand --ignore-not-found 'Exit 0 when no session or user matched (for scripts; the default is exit 3)'
            cand -q 'Print only errors (and the data asked for)'
            cand --quiet 'Print only errors (and the data asked for)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'sessionctl;export'= {
            cand --user 'Only this user''s sessions'
            cand --key 'Only sessions whose data has this top-level key'
            cand --limit 'At most this many sessions'
            cand --database-url 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]'
            cand --redis-url 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one'
            cand --redis-prefix 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]'
            cand --secret-file 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand --database-timeout 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk'
            cand --active 'Only sessions that have not expired'
            cand --expired 'Only expired sessions (not purged yet)'
            cand --no-cache 'Change sessions in the database alone, accepting that the apps'' cache serves its old copies until they expire'
            cand --ignore-not-found 'Exit 0 when no session or user matched (for scripts; the default is exit 3)'
            cand -q 'Print only errors (and the data asked for)'
            cand --quiet 'Print only errors (and the data asked for)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'sessionctl;import'= {
            cand --database-url 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]'
            cand --redis-url 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one'
            cand --redis-prefix 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]'
            cand --secret-file 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand --database-timeout 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk'
            cand --replace 'Overwrite sessions that already exist (default: keep them)'
            cand --skip-invalid 'Import the valid lines of a file that has invalid ones, reporting each skipped line'
            cand --no-cache 'Change sessions in the database alone, accepting that the apps'' cache serves its old copies until they expire'
            cand --ignore-not-found 'Exit 0 when no session or user matched (for scripts; the default is exit 3)'
            cand -q 'Print only errors (and the data asked for)'
            cand --quiet 'Print only errors (and the data asked for)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'sessionctl;purge-expired'= {
            cand --batch-size 'Rows walked per batch; each batch is one short write transaction'
            cand --older-than 'Grace period: only purge sessions expired at least this long ago (e.g. 1h, 7d)'
            cand --max-duration 'Stop cleanly after this long, keeping what was done (e.g. 10m)'
            cand --database-url 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]'
            cand --redis-url 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one'
            cand --redis-prefix 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]'
            cand --secret-file 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand --database-timeout 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk'
            cand --dry-run 'Count what would be purged, delete nothing'
            cand --no-cache 'Change sessions in the database alone, accepting that the apps'' cache serves its old copies until they expire'
            cand --ignore-not-found 'Exit 0 when no session or user matched (for scripts; the default is exit 3)'
            cand -q 'Print only errors (and the data asked for)'
            cand --quiet 'Print only errors (and the data asked for)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'sessionctl;serve-cron'= {
            cand --batch-size 'Rows walked per batch; each batch is one short write transaction'
            cand --older-than 'Grace period: only purge sessions expired at least this long ago (e.g. 1h, 7d)'
            cand --max-duration 'Stop cleanly after this long, keeping what was done (e.g. 10m)'
            cand --schedule 'When to purge, in cron syntax: 5 fields as in crontab (min hour day month weekday), or 6-7 with seconds first'
            cand --timezone 'Time zone the schedule is read in (an IANA name such as Europe/Paris; daylight saving time followed)'
            cand --log-format 'Log format'
            cand --metrics-addr 'Serve /healthz and Prometheus /metrics on this address (e.g. 127.0.0.1:9187 or localhost:9187; :9187 for every IPv4 interface)'
            cand --database-url 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]'
            cand --redis-url 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one'
            cand --redis-prefix 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]'
            cand --secret-file 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand --database-timeout 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk'
            cand --once 'Run one pass now and exit'
            cand --run-on-start 'Also run a pass right after starting'
            cand --no-cache 'Change sessions in the database alone, accepting that the apps'' cache serves its old copies until they expire'
            cand --ignore-not-found 'Exit 0 when no session or user matched (for scripts; the default is exit 3)'
            cand -q 'Print only errors (and the data asked for)'
            cand --quiet 'Print only errors (and the data asked for)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'sessionctl;migrate'= {
            cand --database-url 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]'
            cand --redis-url 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one'
            cand --redis-prefix 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]'
            cand --secret-file 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand --database-timeout 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk'
            cand --check 'Change nothing: list the pending migrations, and exit 1 when there are any (for deploy pipelines)'
            cand --no-cache 'Change sessions in the database alone, accepting that the apps'' cache serves its old copies until they expire'
            cand --ignore-not-found 'Exit 0 when no session or user matched (for scripts; the default is exit 3)'
            cand -q 'Print only errors (and the data asked for)'
            cand --quiet 'Print only errors (and the data asked for)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'sessionctl;help'= {
            cand show 'Show one session: metadata, which tiers hold it, its data'
            cand list 'List sessions, by expiry'
            cand stats 'Counts, sizes and expiry range of all sessions'
            cand edit 'Change a session''s data (with --set/--unset/--replace, or in $EDITOR)'
            cand expire 'Expire sessions now, in both tiers'
            cand delete 'Delete sessions in both tiers'
            cand revoke 'Delete every session of a user'
            cand regenerate 'Move a session to a new id (same data), removing the old one'
            cand export 'Write sessions as JSON lines, one per line'
            cand import 'Read sessions from JSON lines (as written by export)'
            cand purge-expired 'Delete expired sessions in short batches (safe to interrupt and rerun)'
            cand serve-cron 'Run the purge on a cron schedule, as a daemon (one leader across replicas)'
            cand migrate 'Create or upgrade the session schema'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'sessionctl;help;show'= {
        }
        &'sessionctl;help;list'= {
        }
        &'sessionctl;help;stats'= {
        }
        &'sessionctl;help;edit'= {
        }
        &'sessionctl;help;expire'= {
        }
        &'sessionctl;help;delete'= {
        }
        &'sessionctl;help;revoke'= {
        }
        &'sessionctl;help;regenerate'= {
        }
        &'sessionctl;help;export'= {
        }
        &'sessionctl;help;import'= {
        }
        &'sessionctl;help;purge-expired'= {
        }
        &'sessionctl;help;serve-cron'= {
        }
        &'sessionctl;help;migrate'= {
        }
        &'sessionctl;help;help'= {
        }
    ]
    $completions[$command]
}
