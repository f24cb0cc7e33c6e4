
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'sessionctl' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'sessionctl'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'sessionctl' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one')
            [CompletionResult]::new('--redis-prefix', '--redis-prefix', [CompletionResultType]::ParameterName, 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]')
            [CompletionResult]::new('--secret-file', '--secret-file', [CompletionResultType]::ParameterName, 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--database-timeout', '--database-timeout', [CompletionResultType]::ParameterName, 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk')
            [CompletionResult]::new('--no-cache', '--no-cache', [CompletionResultType]::ParameterName, 'Change sessions in the database alone, accepting that the apps'' cache serves its old copies until they expire')
            [CompletionResult]::new('--ignore-not-found', '--ignore-not-found', [CompletionResultType]::ParameterName, 'Exit 0 when no session or user matched (for scripts; the default is exit 3)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors (and the data asked for)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors (and the data asked for)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show one session: metadata, which tiers hold it, its data')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List sessions, by expiry')
            [CompletionResult]::new('stats', 'stats', [CompletionResultType]::ParameterValue, 'Counts, sizes and expiry range of all sessions')
            [CompletionResult]::new('edit', 'edit', [CompletionResultType]::ParameterValue, 'Change a session''s data (with --set/--unset/--replace, or in $EDITOR)')
            [CompletionResult]::new('expire', 'expire', [CompletionResultType]::ParameterValue, 'Expire sessions now, in both tiers')
            [CompletionResult]::new('delete', 'delete', [CompletionResultType]::ParameterValue, 'Delete sessions in both tiers')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'Delete every session of a user')
            [CompletionResult]::new('regenerate', 'regenerate', [CompletionResultType]::ParameterValue, 'Move a session to a new id (same data), removing the old one')
            [CompletionResult]::new('export', 'export', [CompletionResultType]::ParameterValue, 'Write sessions as JSON lines, one per line')
            [CompletionResult]::new('import', 'import', [CompletionResultType]::ParameterValue, 'Read sessions from JSON lines (as written by export)')
            [CompletionResult]::new('purge-expired', 'purge-expired', [CompletionResultType]::ParameterValue, 'Delete expired sessions in short batches (safe to interrupt and rerun)')
            [CompletionResult]::new('serve-cron', 'serve-cron', [CompletionResultType]::ParameterValue, 'Run the purge on a cron schedule, as a daemon (one leader across replicas)')
            [CompletionResult]::new('migrate', 'migrate', [CompletionResultType]::ParameterValue, 'Create or upgrade the session schema')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'sessionctl;show' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one')
            [CompletionResult]::new('--redis-prefix', '--redis-prefix', [CompletionResultType]::ParameterName, 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]')
            [CompletionResult]::new('--secret-file', '--secret-file', [CompletionResultType]::ParameterName, 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--database-timeout', '--database-timeout', [CompletionResultType]::ParameterName, 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk')
            [CompletionResult]::new('--no-cache', '--no-cache', [CompletionResultType]::ParameterName, 'Change sessions in the database alone, accepting that the apps'' cache serves its old copies until they expire')
            [CompletionResult]::new('--ignore-not-found', '--ignore-not-found', [CompletionResultType]::ParameterName, 'Exit 0 when no session or user matched (for scripts; the default is exit 3)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors (and the data asked for)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors (and the data asked for)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'sessionctl;list' {
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'Only this user''s sessions')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Only sessions whose data has this top-level key')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'At most this many sessions')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one')
            [CompletionResult]::new('--redis-prefix', '--redis-prefix', [CompletionResultType]::ParameterName, 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]')
            [CompletionResult]::new('--secret-file', '--secret-file', [CompletionResultType]::ParameterName, 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--database-timeout', '--database-timeout', [CompletionResultType]::ParameterName, 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk')
            [CompletionResult]::new('--active', '--active', [CompletionResultType]::ParameterName, 'Only sessions that have not expired')
            [CompletionResult]::new('--expired', '--expired', [CompletionResultType]::ParameterName, 'Only expired sessions (not purged yet)')
            [CompletionResult]::new('--no-cache', '--no-cache', [CompletionResultType]::ParameterName, 'Change sessions in the database alone, accepting that the apps'' cache serves its old copies until they expire')
            [CompletionResult]::new('--ignore-not-found', '--ignore-not-found', [CompletionResultType]::ParameterName, 'Exit 0 when no session or user matched (for scripts; the default is exit 3)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors (and the data asked for)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors (and the data asked for)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'sessionctl;stats' {
            [CompletionResult]::new('--sample', '--sample', [CompletionResultType]::ParameterName, 'Rows in the sample; tables of up to ten times this are read whole')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one')
            [CompletionResult]::new('--redis-prefix', '--redis-prefix', [CompletionResultType]::ParameterName, 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]')
            [CompletionResult]::new('--secret-file', '--secret-file', [CompletionResultType]::ParameterName, 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--database-timeout', '--database-timeout', [CompletionResultType]::ParameterName, 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk')
            [CompletionResult]::new('--exact', '--exact', [CompletionResultType]::ParameterName, 'Read every row (a progress bar on a terminal) instead of estimating a large table''s counts and distributions from a sample')
            [CompletionResult]::new('--no-cache', '--no-cache', [CompletionResultType]::ParameterName, 'Change sessions in the database alone, accepting that the apps'' cache serves its old copies until they expire')
            [CompletionResult]::new('--ignore-not-found', '--ignore-not-found', [CompletionResultType]::ParameterName, 'Exit 0 when no session or user matched (for scripts; the default is exit 3)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors (and the data asked for)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors (and the data asked for)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'sessionctl;edit' {
            [CompletionResult]::new('--set', '--set', [CompletionResultType]::ParameterName, 'Set KEY to a JSON value (repeatable), e.g. --set ''cart=["book"]'' --set theme=''"dark"''')
            [CompletionResult]::new('--unset', '--unset', [CompletionResultType]::ParameterName, 'Remove KEY (repeatable)')
            [CompletionResult]::new('--replace', '--replace', [CompletionResultType]::ParameterName, 'Replace all the data with the JSON object in FILE (''-'' for stdin)')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one')
            [CompletionResult]::new('--redis-prefix', '--redis-prefix', [CompletionResultType]::ParameterName, 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]')
            [CompletionResult]::new('--secret-file', '--secret-file', [CompletionResultType]::ParameterName, 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--database-timeout', '--database-timeout', [CompletionResultType]::ParameterName, 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk')
            [CompletionResult]::new('--no-cache', '--no-cache', [CompletionResultType]::ParameterName, 'Change sessions in the database alone, accepting that the apps'' cache serves its old copies until they expire')
            [CompletionResult]::new('--ignore-not-found', '--ignore-not-found', [CompletionResultType]::ParameterName, 'Exit 0 when no session or user matched (for scripts; the default is exit 3)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors (and the data asked for)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors (and the data asked for)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'sessionctl;expire' {
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'Every live session of this user instead')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one')
            [CompletionResult]::new('--redis-prefix', '--redis-prefix', [CompletionResultType]::ParameterName, 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]')
            [CompletionResult]::new('--secret-file', '--secret-file', [CompletionResultType]::ParameterName, 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--database-timeout', '--database-timeout', [CompletionResultType]::ParameterName, 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk')
            [CompletionResult]::new('--no-cache', '--no-cache', [CompletionResultType]::ParameterName, 'Change sessions in the database alone, accepting that the apps'' cache serves its old copies until they expire')
            [CompletionResult]::new('--ignore-not-found', '--ignore-not-found', [CompletionResultType]::ParameterName, 'Exit 0 when no session or user matched (for scripts; the default is exit 3)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors (and the data asked for)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors (and the data asked for)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'sessionctl;delete' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one')
            [CompletionResult]::new('--redis-prefix', '--redis-prefix', [CompletionResultType]::ParameterName, 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]')
            [CompletionResult]::new('--secret-file', '--secret-file', [CompletionResultType]::ParameterName, 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--database-timeout', '--database-timeout', [CompletionResultType]::ParameterName, 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask for confirmation')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask for confirmation')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Say what would be deleted, delete nothing')
            [CompletionResult]::new('--no-cache', '--no-cache', [CompletionResultType]::ParameterName, 'Change sessions in the database alone, accepting that the apps'' cache serves its old copies until they expire')
            [CompletionResult]::new('--ignore-not-found', '--ignore-not-found', [CompletionResultType]::ParameterName, 'Exit 0 when no session or user matched (for scripts; the default is exit 3)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors (and the data asked for)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors (and the data asked for)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'sessionctl;revoke' {
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'The user whose sessions go')
            [CompletionResult]::new('--except', '--except', [CompletionResultType]::ParameterName, 'Keep this session of the user, by id, stored key or cookie ("log out other devices"): every other one goes, in one statement')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one')
            [CompletionResult]::new('--redis-prefix', '--redis-prefix', [CompletionResultType]::ParameterName, 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]')
            [CompletionResult]::new('--secret-file', '--secret-file', [CompletionResultType]::ParameterName, 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--database-timeout', '--database-timeout', [CompletionResultType]::ParameterName, 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask for confirmation')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask for confirmation')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Count what would be revoked, revoke nothing')
            [CompletionResult]::new('--no-cache', '--no-cache', [CompletionResultType]::ParameterName, 'Change sessions in the database alone, accepting that the apps'' cache serves its old copies until they expire')
            [CompletionResult]::new('--ignore-not-found', '--ignore-not-found', [CompletionResultType]::ParameterName, 'Exit 0 when no session or user matched (for scripts; the default is exit 3)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors (and the data asked for)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors (and the data asked for)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'sessionctl;regenerate' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one')
            [CompletionResult]::new('--redis-prefix', '--redis-prefix', [CompletionResultType]::ParameterName, 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]')
            [CompletionResult]::new('--secret-file', '--secret-file', [CompletionResultType]::ParameterName, 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--database-timeout', '--database-timeout', [CompletionResultType]::ParameterName, 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk')
            [CompletionResult]::new('--no-cache', '--no-cache', [CompletionResultType]::ParameterName, 'Change sessions in the database alone, accepting that the apps'' cache serves its old copies until they expire')
            [CompletionResult]::new('--ignore-not-found', '--ignore-not-found', [CompletionResultType]::ParameterName, 'Exit 0 when no session or user matched (for scripts; the default is exit 3)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors (and the data asked for)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors (and the data asked for)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'sessionctl;export' {
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'Only this user''s sessions')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Only sessions whose data has this top-level key')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'At most this many sessions')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one')
            [CompletionResult]::new('--redis-prefix', '--redis-prefix', [CompletionResultType]::ParameterName, 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]')
            [CompletionResult]::new('--secret-file', '--secret-file', [CompletionResultType]::ParameterName, 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--database-timeout', '--database-timeout', [CompletionResultType]::ParameterName, 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk')
            [CompletionResult]::new('--active', '--active', [CompletionResultType]::ParameterName, 'Only sessions that have not expired')
            [CompletionResult]::new('--expired', '--expired', [CompletionResultType]::ParameterName, 'Only expired sessions (not purged yet)')
            [CompletionResult]::new('--no-cache', '--no-cache', [CompletionResultType]::ParameterName, 'Change sessions in the database alone, accepting that the apps'' cache serves its old copies until they expire')
            [CompletionResult]::new('--ignore-not-found', '--ignore-not-found', [CompletionResultType]::ParameterName, 'Exit 0 when no session or user matched (for scripts; the default is exit 3)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors (and the data asked for)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors (and the data asked for)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'sessionctl;import' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one')
            [CompletionResult]::new('--redis-prefix', '--redis-prefix', [CompletionResultType]::ParameterName, 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]')
            [CompletionResult]::new('--secret-file', '--secret-file', [CompletionResultType]::ParameterName, 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--database-timeout', '--database-timeout', [CompletionResultType]::ParameterName, 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk')
            [CompletionResult]::new('--replace', '--replace', [CompletionResultType]::ParameterName, 'Overwrite sessions that already exist (default: keep them)')
            [CompletionResult]::new('--skip-invalid', '--skip-invalid', [CompletionResultType]::ParameterName, 'Import the valid lines of a file that has invalid ones, reporting each skipped line')
            [CompletionResult]::new('--no-cache', '--no-cache', [CompletionResultType]::ParameterName, 'Change sessions in the database alone, accepting that the apps'' cache serves its old copies until they expire')
            [CompletionResult]::new('--ignore-not-found', '--ignore-not-found', [CompletionResultType]::ParameterName, 'Exit 0 when no session or user matched (for scripts; the default is exit 3)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors (and the data asked for)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors (and the data asked for)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'sessionctl;purge-expired' {
            [CompletionResult]::new('--batch-size', '--batch-size', [CompletionResultType]::ParameterName, 'Rows walked per batch; each batch is one short write transaction')
            [CompletionResult]::new('--older-than', '--older-than', [CompletionResultType]::ParameterName, 'Grace period: only purge sessions expired at least this long ago (e.g. 1h, 7d)')
            [CompletionResult]::new('--max-duration', '--max-duration', [CompletionResultType]::ParameterName, 'Stop cleanly after this long, keeping what was done (e.g. 10m)')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one')
            [CompletionResult]::new('--redis-prefix', '--redis-prefix', [CompletionResultType]::ParameterName, 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]')
            [CompletionResult]::new('--secret-file', '--secret-file', [CompletionResultType]::ParameterName, 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--database-timeout', '--database-timeout', [CompletionResultType]::ParameterName, 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Count what would be purged, delete nothing')
            [CompletionResult]::new('--no-cache', '--no-cache', [CompletionResultType]::ParameterName, 'Change sessions in the database alone, accepting that the apps'' cache serves its old copies until they expire')
            [CompletionResult]::new('--ignore-not-found', '--ignore-not-found', [CompletionResultType]::ParameterName, 'Exit 0 when no session or user matched (for scripts; the default is exit 3)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors (and the data asked for)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors (and the data asked for)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'sessionctl;serve-cron' {
            [CompletionResult]::new('--batch-size', '--batch-size', [CompletionResultType]::ParameterName, 'Rows walked per batch; each batch is one short write transaction')
            [CompletionResult]::new('--older-than', '--older-than', [CompletionResultType]::ParameterName, 'Grace period: only purge sessions expired at least this long ago (e.g. 1h, 7d)')
            [CompletionResult]::new('--max-duration', '--max-duration', [CompletionResultType]::ParameterName, 'Stop cleanly after this long, keeping what was done (e.g. 10m)')
            [CompletionResult]::new('--schedule', '--schedule', [CompletionResultType]::ParameterName, 'When to purge, in cron syntax: 5 fields as in crontab (min hour day month weekday), or 6-7 with seconds first')
            [CompletionResult]::new('--timezone', '--timezone', [CompletionResultType]::ParameterName, 'Time zone the schedule is read in (an IANA name such as Europe/Paris; daylight saving time followed)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format')
            [CompletionResult]::new('--metrics-addr', '--metrics-addr', [CompletionResultType]::ParameterName, 'Serve /healthz and Prometheus /metrics on this address (e.g. 127.0.0.1:9187 or localhost:9187; :9187 for every IPv4 interface)')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one')
            [CompletionResult]::new('--redis-prefix', '--redis-prefix', [CompletionResultType]::ParameterName, 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]')
            [CompletionResult]::new('--secret-file', '--secret-file', [CompletionResultType]::ParameterName, 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--database-timeout', '--database-timeout', [CompletionResultType]::ParameterName, 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk')
            [CompletionResult]::new('--once', '--once', [CompletionResultType]::ParameterName, 'Run one pass now and exit')
            [CompletionResult]::new('--run-on-start', '--run-on-start', [CompletionResultType]::ParameterName, 'Also run a pass right after starting')
            [CompletionResult]::new('--no-cache', '--no-cache', [CompletionResultType]::ParameterName, 'Change sessions in the database alone, accepting that the apps'' cache serves its old copies until they expire')
            [CompletionResult]::new('--ignore-not-found', '--ignore-not-found', [CompletionResultType]::ParameterName, 'Exit 0 when no session or user matched (for scripts; the default is exit 3)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors (and the data asked for)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors (and the data asked for)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'sessionctl;migrate' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one')
            [CompletionResult]::new('--redis-prefix', '--redis-prefix', [CompletionResultType]::ParameterName, 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]')
            [CompletionResult]::new('--secret-file', '--secret-file', [CompletionResultType]::ParameterName, 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--database-timeout', '--database-timeout', [CompletionResultType]::ParameterName, 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk')
            [CompletionResult]::new('--check', '--check', [CompletionResultType]::ParameterName, 'Change nothing: list the pending migrations, and exit 1 when there are any (for deploy pipelines)')
            [CompletionResult]::new('--no-cache', '--no-cache', [CompletionResultType]::ParameterName, 'Change sessions in the database alone, accepting that the apps'' cache serves its old copies until they expire')
            [CompletionResult]::new('--ignore-not-found', '--ignore-not-found', [CompletionResultType]::ParameterName, 'Exit 0 when no session or user matched (for scripts; the default is exit 3)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors (and the data asked for)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors (and the data asked for)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'sessionctl;help' {
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show one session: metadata, which tiers hold it, its data')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List sessions, by expiry')
            [CompletionResult]::new('stats', 'stats', [CompletionResultType]::ParameterValue, 'Counts, sizes and expiry range of all sessions')
            [CompletionResult]::new('edit', 'edit', [CompletionResultType]::ParameterValue, 'Change a session''s data (with --set/--unset/--replace, or in $EDITOR)')
            [CompletionResult]::new('expire', 'expire', [CompletionResultType]::ParameterValue, 'Expire sessions now, in both tiers')
            [CompletionResult]::new('delete', 'delete', [CompletionResultType]::ParameterValue, 'Delete sessions in both tiers')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'Delete every session of a user')
            [CompletionResult]::new('regenerate', 'regenerate', [CompletionResultType]::ParameterValue, 'Move a session to a new id (same data), removing the old one')
            [CompletionResult]::new('export', 'export', [CompletionResultType]::ParameterValue, 'Write sessions as JSON lines, one per line')
            [CompletionResult]::new('import', 'import', [CompletionResultType]::ParameterValue, 'Read sessions from JSON lines (as written by export)')
            [CompletionResult]::new('purge-expired', 'purge-expired', [CompletionResultType]::ParameterValue, 'Delete expired sessions in short batches (safe to interrupt and rerun)')
            [CompletionResult]::new('serve-cron', 'serve-cron', [CompletionResultType]::ParameterValue, 'Run the purge on a cron schedule, as a daemon (one leader across replicas)')
            [CompletionResult]::new('migrate', 'migrate', [CompletionResultType]::ParameterValue, 'Create or upgrade the session schema')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'sessionctl;help;show' {
            break
        }
        'sessionctl;help;list' {
            break
        }
        'sessionctl;help;stats' {
            break
        }
        'sessionctl;help;edit' {
            break
        }
        'sessionctl;help;expire' {
            break
        }
        'sessionctl;help;delete' {
            break
        }
        'sessionctl;help;revoke' {
            break
        }
        'sessionctl;help;regenerate' {
            break
        }
        'sessionctl;help;export' {
            break
        }
        'sessionctl;help;import' {
            break
        }
        'sessionctl;help;purge-expired' {
            break
        }
        'sessionctl;help;serve-cron' {
            break
        }
        'sessionctl;help;migrate' {
            break
        }
        'sessionctl;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
