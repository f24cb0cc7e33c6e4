# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_sessionctl_global_optspecs
    string join \n database-url= redis-url= redis-prefix= no-cache secret-file= o/output= ignore-not-found q/quiet database-timeout= h/help V/version
end

function __fish_sessionctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_sessionctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_sessionctl_using_subcommand
    set -l cmd (__fish_sessionctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c sessionctl -n "__fish_sessionctl_needs_command" -l database-url -d 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]' -r -f
complete -c sessionctl -n "__fish_sessionctl_needs_command" -l redis-url -d 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one' -r -f
complete -c sessionctl -n "__fish_sessionctl_needs_command" -l redis-prefix -d 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]' -r -f
complete -c sessionctl -n "__fish_sessionctl_needs_command" -l secret-file -d 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)' -r -F
complete -c sessionctl -n "__fish_sessionctl_needs_command" -s o -l output -d 'Output format' -r -f -a "table\t'Human-readable tables'
json\t'Stable JSON for scripts (one document per command; `list` and `export` write one object per line)'"
complete -c sessionctl -n "__fish_sessionctl_needs_command" -l database-timeout -d 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk' -r -f
complete -c sessionctl -n "__fish_sessionctl_needs_command" -l no-cache -d 'Change sessions in the database alone, accepting that the apps\' cache serves its old copies until they expire'
complete -c sessionctl -n "__fish_sessionctl_needs_command" -l ignore-not-found -d 'Exit 0 when no session or user matched (for scripts; the default is exit 3)'
complete -c sessionctl -n "__fish_sessionctl_needs_command" -s q -l quiet -d 'Print only errors (and the data asked for)'
complete -c sessionctl -n "__fish_sessionctl_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sessionctl -n "__fish_sessionctl_needs_command" -s V -l version -d 'Print version'
complete -c sessionctl -n "__fish_sessionctl_needs_command" -f -a "show" -d 'Show one session: metadata, which tiers hold it, its data'
complete -c sessionctl -n "__fish_sessionctl_needs_command" -f -a "list" -d 'List sessions, by expiry'
complete -c sessionctl -n "__fish_sessionctl_needs_command" -f -a "stats" -d 'Counts, sizes and expiry range of all sessions'
complete -c sessionctl -n "__fish_sessionctl_needs_command" -f -a "edit" -d 'Change a session\'s data (with --set/--unset/--replace, or in $EDITOR)'
complete -c sessionctl -n "__fish_sessionctl_needs_command" -f -a "expire" -d 'Expire sessions now, in both tiers'
complete -c sessionctl -n "__fish_sessionctl_needs_command" -f -a "delete" -d 'Delete sessions in both tiers'
complete -c sessionctl -n "__fish_sessionctl_needs_command" -f -a "revoke" -d 'Delete every session of a user'
complete -c sessionctl -n "__fish_sessionctl_needs_command" -f -a "regenerate" -d 'Move a session to a new id (same data), removing the old one'
complete -c sessionctl -n "__fish_sessionctl_needs_command" -f -a "export" -d 'Write sessions as JSON lines, one per line'
complete -c sessionctl -n "__fish_sessionctl_needs_command" -f -a "import" -d 'Read sessions from JSON lines (as written by export)'
complete -c sessionctl -n "__fish_sessionctl_needs_command" -f -a "purge-expired" -d 'Delete expired sessions in short batches (safe to interrupt and rerun)'
complete -c sessionctl -n "__fish_sessionctl_needs_command" -f -a "serve-cron" -d 'Run the purge on a cron schedule, as a daemon (one leader across replicas)'
complete -c sessionctl -n "__fish_sessionctl_needs_command" -f -a "migrate" -d 'Create or upgrade the session schema'
complete -c sessionctl -n "__fish_sessionctl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand show" -l database-url -d 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand show" -l redis-url -d 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand show" -l redis-prefix -d 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand show" -l secret-file -d 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)' -r -F
complete -c sessionctl -n "__fish_sessionctl_using_subcommand show" -s o -l output -d 'Output format' -r -f -a "table\t'Human-readable tables'
json\t'Stable JSON for scripts (one document per command; `list` and `export` write one object per line)'"
complete -c sessionctl -n "__fish_sessionctl_using_subcommand show" -l database-timeout -d 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand show" -l no-cache -d 'Change sessions in the database alone, accepting that the apps\' cache serves its old copies until they expire'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand show" -l ignore-not-found -d 'Exit 0 when no session or user matched (for scripts; the default is exit 3)'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand show" -s q -l quiet -d 'Print only errors (and the data asked for)'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand show" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand show" -s V -l version -d 'Print version'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand list" -l user -d 'Only this user\'s sessions' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand list" -l key -d 'Only sessions whose data has this top-level key' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand list" -l limit -d 'At most this many sessions' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand list" -l database-url -d 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand list" -l redis-url -d 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand list" -l redis-prefix -d 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand list" -l secret-file -d 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)' -r -F
complete -c sessionctl -n "__fish_sessionctl_using_subcommand list" -s o -l output -d 'Output format' -r -f -a "table\t'Human-readable tables'
json\t'Stable JSON for scripts (one document per command; `list` and `export` write one object per line)'"
complete -c sessionctl -n "__fish_sessionctl_using_subcommand list" -l database-timeout -d 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand list" -l active -d 'Only sessions that have not expired'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand list" -l expired -d 'Only expired sessions (not purged yet)'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand list" -l no-cache -d 'Change sessions in the database alone, accepting that the apps\' cache serves its old copies until they expire'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand list" -l ignore-not-found -d 'Exit 0 when no session or user matched (for scripts; the default is exit 3)'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand list" -s q -l quiet -d 'Print only errors (and the data asked for)'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand list" -s V -l version -d 'Print version'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand stats" -l sample -d 'Rows in the sample; tables of up to ten times this are read whole' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand stats" -l database-url -d 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand stats" -l redis-url -d 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand stats" -l redis-prefix -d 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand stats" -l secret-file -d 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)' -r -F
complete -c sessionctl -n "__fish_sessionctl_using_subcommand stats" -s o -l output -d 'Output format' -r -f -a "table\t'Human-readable tables'
json\t'Stable JSON for scripts (one document per command; `list` and `export` write one object per line)'"
complete -c sessionctl -n "__fish_sessionctl_using_subcommand stats" -l database-timeout -d 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand stats" -l exact -d 'Read every row (a progress bar on a terminal) instead of estimating a large table\'s counts and distributions from a sample'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand stats" -l no-cache -d 'Change sessions in the database alone, accepting that the apps\' cache serves its old copies until they expire'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand stats" -l ignore-not-found -d 'Exit 0 when no session or user matched (for scripts; the default is exit 3)'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand stats" -s q -l quiet -d 'Print only errors (and the data asked for)'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand stats" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand stats" -s V -l version -d 'Print version'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand edit" -l set -d 'Set KEY to a JSON value (repeatable), e.g. --set \'cart=["book"]\' --set theme=\'"dark"\'' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand edit" -l unset -d 'Remove KEY (repeatable)' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand edit" -l replace -d 'Replace all the data with the JSON object in FILE (\'-\' for stdin)' -r -F
complete -c sessionctl -n "__fish_sessionctl_using_subcommand edit" -l database-url -d 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand edit" -l redis-url -d 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand edit" -l redis-prefix -d 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand edit" -l secret-file -d 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)' -r -F
complete -c sessionctl -n "__fish_sessionctl_using_subcommand edit" -s o -l output -d 'Output format' -r -f -a "table\t'Human-readable tables'
json\t'Stable JSON for scripts (one document per command; `list` and `export` write one object per line)'"
complete -c sessionctl -n "__fish_sessionctl_using_subcommand edit" -l database-timeout -d 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand edit" -l no-cache -d 'Change sessions in the database alone, accepting that the apps\' cache serves its old copies until they expire'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand edit" -l ignore-not-found -d 'Exit 0 when no session or user matched (for scripts; the default is exit 3)'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand edit" -s q -l quiet -d 'Print only errors (and the data asked for)'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand edit" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand edit" -s V -l version -d 'Print version'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand expire" -l user -d 'Every live session of this user instead' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand expire" -l database-url -d 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand expire" -l redis-url -d 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand expire" -l redis-prefix -d 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand expire" -l secret-file -d 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)' -r -F
complete -c sessionctl -n "__fish_sessionctl_using_subcommand expire" -s o -l output -d 'Output format' -r -f -a "table\t'Human-readable tables'
json\t'Stable JSON for scripts (one document per command; `list` and `export` write one object per line)'"
complete -c sessionctl -n "__fish_sessionctl_using_subcommand expire" -l database-timeout -d 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand expire" -l no-cache -d 'Change sessions in the database alone, accepting that the apps\' cache serves its old copies until they expire'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand expire" -l ignore-not-found -d 'Exit 0 when no session or user matched (for scripts; the default is exit 3)'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand expire" -s q -l quiet -d 'Print only errors (and the data asked for)'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand expire" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand expire" -s V -l version -d 'Print version'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand delete" -l database-url -d 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand delete" -l redis-url -d 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand delete" -l redis-prefix -d 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand delete" -l secret-file -d 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)' -r -F
complete -c sessionctl -n "__fish_sessionctl_using_subcommand delete" -s o -l output -d 'Output format' -r -f -a "table\t'Human-readable tables'
json\t'Stable JSON for scripts (one document per command; `list` and `export` write one object per line)'"
complete -c sessionctl -n "__fish_sessionctl_using_subcommand delete" -l database-timeout -d 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand delete" -s y -l yes -d 'Do not ask for confirmation'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand delete" -l dry-run -d 'Say what would be deleted, delete nothing'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand delete" -l no-cache -d 'Change sessions in the database alone, accepting that the apps\' cache serves its old copies until they expire'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand delete" -l ignore-not-found -d 'Exit 0 when no session or user matched (for scripts; the default is exit 3)'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand delete" -s q -l quiet -d 'Print only errors (and the data asked for)'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand delete" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand delete" -s V -l version -d 'Print version'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand revoke" -l user -d 'The user whose sessions go' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand revoke" -l except -d 'Keep this session of the user, by id, stored key or cookie ("log out other devices"): every other one goes, in one statement' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand revoke" -l database-url -d 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand revoke" -l redis-url -d 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand revoke" -l redis-prefix -d 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand revoke" -l secret-file -d 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)' -r -F
complete -c sessionctl -n "__fish_sessionctl_using_subcommand revoke" -s o -l output -d 'Output format' -r -f -a "table\t'Human-readable tables'
json\t'Stable JSON for scripts (one document per command; `list` and `export` write one object per line)'"
complete -c sessionctl -n "__fish_sessionctl_using_subcommand revoke" -l database-timeout -d 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand revoke" -s y -l yes -d 'Do not ask for confirmation'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand revoke" -l dry-run -d 'Count what would be revoked, revoke nothing'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand revoke" -l no-cache -d 'Change sessions in the database alone, accepting that the apps\' cache serves its old copies until they expire'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand revoke" -l ignore-not-found -d 'Exit 0 when no session or user matched (for scripts; the default is exit 3)'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand revoke" -s q -l quiet -d 'Print only errors (and the data asked for)'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand revoke" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand revoke" -s V -l version -d 'Print version'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand regenerate" -l database-url -d 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand regenerate" -l redis-url -d 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand regenerate" -l redis-prefix -d 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand regenerate" -l secret-file -d 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)' -r -F
complete -c sessionctl -n "__fish_sessionctl_using_subcommand regenerate" -s o -l output -d 'Output format' -r -f -a "table\t'Human-readable tables'
json\t'Stable JSON for scripts (one document per command; `list` and `export` write one object per line)'"
complete -c sessionctl -n "__fish_sessionctl_using_subcommand regenerate" -l database-timeout -d 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand regenerate" -l no-cache -d 'Change sessions in the database alone, accepting that the apps\' cache serves its old copies until they expire'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand regenerate" -l ignore-not-found -d 'Exit 0 when no session or user matched (for scripts; the default is exit 3)'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand regenerate" -s q -l quiet -d 'Print only errors (and the data asked for)'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand regenerate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand regenerate" -s V -l version -d 'Print version'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand export" -l user -d 'Only this user\'s sessions' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand export" -l key -d 'Only sessions whose data has this top-level key' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand export" -l limit -d 'At most this many sessions' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand export" -l database-url -d 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand export" -l redis-url -d 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand export" -l redis-prefix -d 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand export" -l secret-file -d 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)' -r -F
complete -c sessionctl -n "__fish_sessionctl_using_subcommand export" -s o -l output -d 'Output format' -r -f -a "table\t'Human-readable tables'
json\t'Stable JSON for scripts (one document per command; `list` and `export` write one object per line)'"
complete -c sessionctl -n "__fish_sessionctl_using_subcommand export" -l database-timeout -d 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand export" -l active -d 'Only sessions that have not expired'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand export" -l expired -d 'Only expired sessions (not purged yet)'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand export" -l no-cache -d 'Change sessions in the database alone, accepting that the apps\' cache serves its old copies until they expire'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand export" -l ignore-not-found -d 'Exit 0 when no session or user matched (for scripts; the default is exit 3)'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand export" -s q -l quiet -d 'Print only errors (and the data asked for)'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand export" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand export" -s V -l version -d 'Print version'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand import" -l database-url -d 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand import" -l redis-url -d 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand import" -l redis-prefix -d 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand import" -l secret-file -d 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)' -r -F
complete -c sessionctl -n "__fish_sessionctl_using_subcommand import" -s o -l output -d 'Output format' -r -f -a "table\t'Human-readable tables'
json\t'Stable JSON for scripts (one document per command; `list` and `export` write one object per line)'"
complete -c sessionctl -n "__fish_sessionctl_using_subcommand import" -l database-timeout -d 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand import" -l replace -d 'Overwrite sessions that already exist (default: keep them)'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand import" -l skip-invalid -d 'Import the valid lines of a file that has invalid ones, reporting each skipped line'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand import" -l no-cache -d 'Change sessions in the database alone, accepting that the apps\' cache serves its old copies until they expire'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand import" -l ignore-not-found -d 'Exit 0 when no session or user matched (for scripts; the default is exit 3)'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand import" -s q -l quiet -d 'Print only errors (and the data asked for)'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand import" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand import" -s V -l version -d 'Print version'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand purge-expired" -l batch-size -d 'Rows walked per batch; each batch is one short write transaction' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand purge-expired" -l older-than -d 'Grace period: only purge sessions expired at least this long ago (e.g. 1h, 7d)' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand purge-expired" -l max-duration -d 'Stop cleanly after this long, keeping what was done (e.g. 10m)' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand purge-expired" -l database-url -d 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand purge-expired" -l redis-url -d 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand purge-expired" -l redis-prefix -d 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand purge-expired" -l secret-file -d 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)' -r -F
complete -c sessionctl -n "__fish_sessionctl_using_subcommand purge-expired" -s o -l output -d 'Output format' -r -f -a "table\t'Human-readable tables'
json\t'Stable JSON for scripts (one document per command; `list` and `export` write one object per line)'"
complete -c sessionctl -n "__fish_sessionctl_using_subcommand purge-expired" -l database-timeout -d 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand purge-expired" -l dry-run -d 'Count what would be purged, delete nothing'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand purge-expired" -l no-cache -d 'Change sessions in the database alone, accepting that the apps\' cache serves its old copies until they expire'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand purge-expired" -l ignore-not-found -d 'Exit 0 when no session or user matched (for scripts; the default is exit 3)'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand purge-expired" -s q -l quiet -d 'Print only errors (and the data asked for)'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand purge-expired" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand purge-expired" -s V -l version -d 'Print version'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand serve-cron" -l batch-size -d 'Rows walked per batch; each batch is one short write transaction' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand serve-cron" -l older-than -d 'Grace period: only purge sessions expired at least this long ago (e.g. 1h, 7d)' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand serve-cron" -l max-duration -d 'Stop cleanly after this long, keeping what was done (e.g. 10m)' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand serve-cron" -l schedule -d 'When to purge, in cron syntax: 5 fields as in crontab (min hour day month weekday), or 6-7 with seconds first' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand serve-cron" -l timezone -d 'Time zone the schedule is read in (an IANA name such as Europe/Paris; daylight saving time followed)' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand serve-cron" -l log-format -d 'Log format' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line'"
complete -c sessionctl -n "__fish_sessionctl_using_subcommand serve-cron" -l metrics-addr -d 'Serve /healthz and Prometheus /metrics on this address (e.g. 127.0.0.1:9187 or localhost:9187; :9187 for every IPv4 interface)' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand serve-cron" -l database-url -d 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand serve-cron" -l redis-url -d 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand serve-cron" -l redis-prefix -d 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand serve-cron" -l secret-file -d 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)' -r -F
complete -c sessionctl -n "__fish_sessionctl_using_subcommand serve-cron" -s o -l output -d 'Output format' -r -f -a "table\t'Human-readable tables'
json\t'Stable JSON for scripts (one document per command; `list` and `export` write one object per line)'"
complete -c sessionctl -n "__fish_sessionctl_using_subcommand serve-cron" -l database-timeout -d 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand serve-cron" -l once -d 'Run one pass now and exit'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand serve-cron" -l run-on-start -d 'Also run a pass right after starting'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand serve-cron" -l no-cache -d 'Change sessions in the database alone, accepting that the apps\' cache serves its old copies until they expire'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand serve-cron" -l ignore-not-found -d 'Exit 0 when no session or user matched (for scripts; the default is exit 3)'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand serve-cron" -s q -l quiet -d 'Print only errors (and the data asked for)'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand serve-cron" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand serve-cron" -s V -l version -d 'Print version'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand migrate" -l database-url -d 'Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`]' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand migrate" -l redis-url -d 'Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand migrate" -l redis-prefix -d 'Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:]' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand migrate" -l secret-file -d 'File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves)' -r -F
complete -c sessionctl -n "__fish_sessionctl_using_subcommand migrate" -s o -l output -d 'Output format' -r -f -a "table\t'Human-readable tables'
json\t'Stable JSON for scripts (one document per command; `list` and `export` write one object per line)'"
complete -c sessionctl -n "__fish_sessionctl_using_subcommand migrate" -l database-timeout -d 'Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk' -r -f
complete -c sessionctl -n "__fish_sessionctl_using_subcommand migrate" -l check -d 'Change nothing: list the pending migrations, and exit 1 when there are any (for deploy pipelines)'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand migrate" -l no-cache -d 'Change sessions in the database alone, accepting that the apps\' cache serves its old copies until they expire'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand migrate" -l ignore-not-found -d 'Exit 0 when no session or user matched (for scripts; the default is exit 3)'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand migrate" -s q -l quiet -d 'Print only errors (and the data asked for)'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand migrate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand migrate" -s V -l version -d 'Print version'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand help; and not __fish_seen_subcommand_from show list stats edit expire delete revoke regenerate export import purge-expired serve-cron migrate help" -f -a "show" -d 'Show one session: metadata, which tiers hold it, its data'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand help; and not __fish_seen_subcommand_from show list stats edit expire delete revoke regenerate export import purge-expired serve-cron migrate help" -f -a "list" -d 'List sessions, by expiry'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand help; and not __fish_seen_subcommand_from show list stats edit expire delete revoke regenerate export import purge-expired serve-cron migrate help" -f -a "stats" -d 'Counts, sizes and expiry range of all sessions'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand help; and not __fish_seen_subcommand_from show list stats edit expire delete revoke regenerate export import purge-expired serve-cron migrate help" -f -a "edit" -d 'Change a session\'s data (with --set/--unset/--replace, or in $EDITOR)'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand help; and not __fish_seen_subcommand_from show list stats edit expire delete revoke regenerate export import purge-expired serve-cron migrate help" -f -a "expire" -d 'Expire sessions now, in both tiers'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand help; and not __fish_seen_subcommand_from show list stats edit expire delete revoke regenerate export import purge-expired serve-cron migrate help" -f -a "delete" -d 'Delete sessions in both tiers'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand help; and not __fish_seen_subcommand_from show list stats edit expire delete revoke regenerate export import purge-expired serve-cron migrate help" -f -a "revoke" -d 'Delete every session of a user'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand help; and not __fish_seen_subcommand_from show list stats edit expire delete revoke regenerate export import purge-expired serve-cron migrate help" -f -a "regenerate" -d 'Move a session to a new id (same data), removing the old one'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand help; and not __fish_seen_subcommand_from show list stats edit expire delete revoke regenerate export import purge-expired serve-cron migrate help" -f -a "export" -d 'Write sessions as JSON lines, one per line'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand help; and not __fish_seen_subcommand_from show list stats edit expire delete revoke regenerate export import purge-expired serve-cron migrate help" -f -a "import" -d 'Read sessions from JSON lines (as written by export)'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand help; and not __fish_seen_subcommand_from show list stats edit expire delete revoke regenerate export import purge-expired serve-cron migrate help" -f -a "purge-expired" -d 'Delete expired sessions in short batches (safe to interrupt and rerun)'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand help; and not __fish_seen_subcommand_from show list stats edit expire delete revoke regenerate export import purge-expired serve-cron migrate help" -f -a "serve-cron" -d 'Run the purge on a cron schedule, as a daemon (one leader across replicas)'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand help; and not __fish_seen_subcommand_from show list stats edit expire delete revoke regenerate export import purge-expired serve-cron migrate help" -f -a "migrate" -d 'Create or upgrade the session schema'
complete -c sessionctl -n "__fish_sessionctl_using_subcommand help; and not __fish_seen_subcommand_from show list stats edit expire delete revoke regenerate export import purge-expired serve-cron migrate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
