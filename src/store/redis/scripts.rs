//! The Lua scripts of the Redis cache tier. Each takes one key, or (the
//! standalone rotation) two; each starts with the helpers it calls (`source`).
//! Writes that must not go backwards compare versions here, inside Redis,
//! so no read-modify-write round trip can interleave with another. Each
//! script runs as one call, bounded like every call by the connection's
//! response timeout (`link.rs`) and the store's cache timeout.

/// The helpers scripts start with, each included only in the scripts that
/// call it (directly or through another helper): Lua creates every
/// function a script defines on each call. `kind` tells a live entry from a
/// tombstone, an absent key, or an entry in the older string format (which
/// reads convert and writes replace). `call_range` runs a command on `key`
/// with ARGV from index `first` to `last`, in chunks (`unpack` has a stack
/// limit). `meta` reads a live entry's version and times in any layout of
/// its times (`fields.rs`), `put_meta` writes them back as `v` and `m`.
/// `unmark_quick`/`mark_quick` unmark or mark, for each data field
/// (`d:<key>`) among ARGV[first..last] (every `step`th), its key as changed
/// by a quick write (`q:<key>`). In order: a helper comes after those it calls.
const HELPERS: &[(&str, &str)] = &[
    (
        "kind",
        r#"local function kind(key)
  local t = redis.call('TYPE', key)['ok']
  if t == 'none' then return 'none' end
  if t ~= 'hash' then
    if redis.call('GET', key) == '!deleted' then return 'tomb' end
    return 'old'
  end
  if redis.call('HEXISTS', key, 'x') == 1 then return 'tomb' end
  return 'live'
end"#,
    ),
    (
        "call_range",
        r#"local function call_range(command, key, first, last)
  local i = first
  while i <= last do
    local stop = math.min(i + 399, last)
    redis.call(command, key, unpack(ARGV, i, stop))
    i = stop + 1
  end
end"#,
    ),
    (
        "write_whole",
        r#"local function write_whole(key, first, expiry)
  redis.call('DEL', key)
  call_range('HSET', key, first, #ARGV)
  redis.call('PEXPIREAT', key, expiry)
end"#,
    ),
    (
        "meta",
        r#"-- A live entry's version, creation and expiry times, as the strings
-- stored, whether a time is in a field of its own (`c`, `t`, `e`: the
-- earlier layout, or a patch by an earlier release) rather than in `m`,
-- and its epoch (`g`, false when it has none);
-- nothing for an absent key, a tombstone, an entry in the older string
-- format, or times that are not whole numbers (what the decoder refuses:
-- such an entry is evicted by the next read in front of a database). One
-- call. This layout's `m` is split and checked by one two-capture match
-- (measured: ~0.5 µs, a third of the finds and checks the earlier layouts
-- still take, and a four-capture pattern cost ~2 µs). An absent field
-- reads as false.
local function meta(key)
  local f = redis.pcall('HMGET', key, 'v', 'm', 'c', 't', 'e', 'g')
  if f.err or not f[1] then return end
  local c, e = f[3], f[5]
  if not (c or f[4] or e) then
    -- This layout: both times from `m`, checked in the same match.
    if not f[2] then return end
    c, e = string.match(f[2], '^(%-?%d+) [^ ]* (%-?%d+)$')
    if not c then return end
    return f[1], c, e, false, f[6]
  end
  if f[2] then
    local a = string.find(f[2], ' ', 1, true)
    local b = a and string.find(f[2], ' ', a + 1, true)
    if not b then return end
    c = c or string.sub(f[2], 1, a - 1)
    e = e or string.sub(f[2], b + 1)
  end
  if not (c and e and string.find(c, '^%-?%d+$') and string.find(e, '^%-?%d+$')) then return end
  return f[1], c, e, true, f[6]
end"#,
    ),
    ("version", "local function version(key)\n  return tonumber(redis.call('HGET', key, 'v'))\nend"),
    (
        "replaceable",
        r#"-- Whether a live entry may be replaced by a record of `version` written
-- in `epoch` (`epoch.rs`): it is of another epoch (or none), and not newer
-- than the record, unless it was written over 5 s ago (its updated time,
-- the app's clock, against Redis' own: apps' clocks off by seconds move
-- the window). A newer one written
-- since is a process's still on the epoch before (for up to a second), or
-- of an earlier release: the record, read before it, must not hide it. An
-- older one is what a restored database leaves behind.
local function replaceable(key, epoch, version)
  local entry = redis.call('HMGET', key, 'g', 'v', 'm', 't')
  if entry[1] == epoch then return false end
  if (tonumber(entry[2]) or 0) <= version then return true end
  -- The updated time: a `t` field of its own wins (an earlier release's
  -- patch, or its layout), as the decoder reads it. None: newer, kept.
  local updated = tonumber(entry[4]) or (entry[3] and tonumber(string.match(entry[3], '^%-?%d+ (%-?%d+) ')))
  if not updated then return false end
  local now = redis.call('TIME')
  return tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - updated > 5000
end"#,
    ),
    (
        "put_meta",
        r#"-- HSET of `v`, `m` (created, updated, expiry) and the pairs
-- ARGV[first..last], in as few calls as `unpack` allows; times in fields of
-- their own (`strays`, see `meta`) go in the same step.
local function put_meta(key, strays, v, c, t, e, first, last)
  if strays then redis.call('HDEL', key, 'c', 't', 'e') end
  local m = c .. ' ' .. t .. ' ' .. e
  -- One key set, the usual patch: no `unpack`.
  if last == first + 1 then
    redis.call('HSET', key, 'v', v, 'm', m, ARGV[first], ARGV[last])
    return
  end
  -- 4 arguments and an even number of items: 400 in one call at most.
  local stop = math.min(first + 395, last)
  redis.call('HSET', key, 'v', v, 'm', m, unpack(ARGV, first, stop))
  call_range('HSET', key, stop + 1, last)
end"#,
    ),
    (
        "unmark_quick",
        r#"local function unmark_quick(key, first, last, step)
  local flags = {}
  for i = first, last, step do
    if string.sub(ARGV[i], 1, 2) == 'd:' then flags[#flags + 1] = 'q:' .. string.sub(ARGV[i], 3) end
  end
  for i = 1, #flags, 400 do
    redis.call('HDEL', key, unpack(flags, i, math.min(i + 399, #flags)))
  end
end"#,
    ),
    (
        "mark_quick",
        r#"local function mark_quick(key, first, last, step, mark)
  for i = first, last, step do
    local field = ARGV[i]
    if string.sub(field, 1, 2) == 'd:' then
      local flag = 'q:' .. string.sub(field, 3)
      if mark then redis.call('HSET', key, flag, '1') else redis.call('HDEL', key, flag) end
    end
  end
end"#,
    ),
];

/// Whether `code` calls the function `name` (not merely a longer name
/// ending in it).
fn calls(code: &str, name: &str) -> bool {
    let call = format!("{name}(");
    code.match_indices(&call).any(|(at, _)| {
        !code[..at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_') && !code[..at].ends_with("function ")
    })
}

/// A script's source: `body` after the helpers it needs.
pub(super) fn source(body: &str) -> String {
    let mut needed = vec![false; HELPERS.len()];
    // Helpers only call earlier ones: one pass from the last settles it.
    for (i, (name, _)) in HELPERS.iter().enumerate().rev() {
        needed[i] = calls(body, name)
            || HELPERS.iter().zip(&needed).skip(i + 1).any(|((_, code), used)| *used && calls(code, name));
    }
    let mut source = String::new();
    for ((_, code), _) in HELPERS.iter().zip(&needed).filter(|(_, used)| **used) {
        source.push_str(code);
        source.push('\n');
    }
    source.push_str(body);
    source
}

/// Refill after a database read, and cache-only creation: only into an
/// empty slot (never over a live entry or a tombstone). KEYS[1]; ARGV
/// expiry ms, then the record's fields (`v`, `m`, then `g` and the epoch
/// when in front of a database). In front of a database a live entry of
/// another epoch, or of none, is as good as empty (`epoch.rs`) when
/// `replaceable`. Returns 1 written, 0 refused.
pub(super) const INSERT_IF_EMPTY: &str = r#"
local k = kind(KEYS[1])
if k == 'tomb' then return 0 end
if k == 'live' and not (ARGV[6] == 'g' and replaceable(KEYS[1], ARGV[7], tonumber(ARGV[3]))) then return 0 end
write_whole(KEYS[1], 2, ARGV[1])
return 1
"#;

/// After a database write: KEYS[1]; ARGV expiry ms, version, fields (`v`,
/// `m`, then `g` and the epoch in front of a database). Returns 1 stored, 0
/// refused (the same or a newer version, which may hold quick writes the
/// record does not, unless it is of another epoch and `replaceable`; or a
/// tombstone).
pub(super) const PUT: &str = r#"
local k = kind(KEYS[1])
if k == 'tomb' then return 0 end
if k == 'live' and version(KEYS[1]) >= tonumber(ARGV[2])
  and not (ARGV[7] == 'g' and replaceable(KEYS[1], ARGV[8], tonumber(ARGV[2]))) then
  return 0
end
write_whole(KEYS[1], 3, ARGV[1])
return 1
"#;

/// After a database patch: KEYS[1]; ARGV expiry ms or '', new version,
/// updated ms, count of removed fields, count of patch items, the removed
/// fields, the patch items, then the epoch or ''. When the entry is the
/// version just before, the patch is applied to it (keeping quick writes,
/// unmarking the keys it persisted), and the script returns 1. An older
/// entry, or one of another epoch (which no read would take), is deleted
/// (the next read refills it): -1. The same or a newer version, a
/// tombstone, or no entry: 0, untouched.
pub(super) const PUT_PATCHED: &str = r#"
local v, c, e, strays, g = meta(KEYS[1])
local current = tonumber(v)
local new = tonumber(ARGV[2])
local removed = tonumber(ARGV[4])
local items = tonumber(ARGV[5])
local epoch = ARGV[6 + removed + items] or ''
if current ~= nil and epoch ~= '' and g ~= epoch then
  redis.call('DEL', KEYS[1])
  return -1
end
if current == nil or current >= new then return 0 end
if current ~= new - 1 then
  redis.call('DEL', KEYS[1])
  return -1
end
call_range('HDEL', KEYS[1], 6, 5 + removed)
if ARGV[1] ~= '' then e = ARGV[1] end
put_meta(KEYS[1], strays, ARGV[2], c, ARGV[3], e, 6 + removed, 5 + removed + items)
-- Fields only: of the items, every other argument (a value, a user id
-- such as `d:x`, is not a field).
unmark_quick(KEYS[1], 6, 5 + removed, 1)
unmark_quick(KEYS[1], 6 + removed, 5 + removed + items, 2)
if ARGV[1] ~= '' then redis.call('PEXPIREAT', KEYS[1], ARGV[1]) end
return 1
"#;

/// Key-level changes to a live entry: KEYS[1]; ARGV bump (1/0), largest
/// version, count of removed fields, count of patch items, expiry ms or '',
/// updated ms, the removed fields, the patch items, then the epoch or ''.
/// Without bump (a quick write) the changed keys are marked `q:<key>` until
/// a database save persists them. Returns the entry's version after the
/// change, or -1 when there is no live entry of this epoch (one of another
/// reads as absent, and the next refill replaces it: a quick write made
/// there would be lost).
pub(super) const PATCH: &str = r#"
local v, c, e, strays, g = meta(KEYS[1])
local current = tonumber(v)
if current == nil then return -1 end
local removed = tonumber(ARGV[3])
local last = 6 + removed + tonumber(ARGV[4])
local epoch = ARGV[last + 1] or ''
if epoch ~= '' and g ~= epoch then return -1 end
if ARGV[1] == '1' then
  if current >= tonumber(ARGV[2]) then
    return redis.error_reply('session version is at its limit')
  end
  -- Versions stop at 2^53: exact as a Lua number, and '%d' prints them whole.
  current = current + 1
  v = string.format('%d', current)
end
call_range('HDEL', KEYS[1], 7, 6 + removed)
if ARGV[5] ~= '' then e = ARGV[5] end
put_meta(KEYS[1], strays, v, c, ARGV[6], e, 7 + removed, last)
if ARGV[1] == '0' then
  mark_quick(KEYS[1], 7, 6 + removed, 1, true)
  mark_quick(KEYS[1], 7 + removed, last, 2, true)
end
if ARGV[5] ~= '' then redis.call('PEXPIREAT', KEYS[1], ARGV[5]) end
return current
"#;

/// Cache-only update: KEYS[1]; ARGV expiry ms, expected version, fields.
/// Returns 1 updated, 0 conflict, -1 missing.
pub(super) const UPDATE: &str = r#"
if kind(KEYS[1]) ~= 'live' then return -1 end
if version(KEYS[1]) ~= tonumber(ARGV[2]) then return 0 end
write_whole(KEYS[1], 3, ARGV[1])
return 1
"#;

/// Cache-only id rotation: KEYS old, new; ARGV expiry ms, expected version,
/// marker ttl ms, fields. The old id becomes a "moved" tombstone. Returns 1
/// rotated, 0 conflict, -1 missing, -2 id taken.
pub(super) const ROTATE: &str = r#"
if kind(KEYS[1]) ~= 'live' then return -1 end
if version(KEYS[1]) ~= tonumber(ARGV[2]) then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return -2 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'x', 'moved')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
write_whole(KEYS[2], 4, ARGV[1])
return 1
"#;

/// The first step of a rotation on a cluster: KEYS[1] the new id's key;
/// ARGV expiry ms, then the record's fields (`v`, version, `m`, times, …).
/// Returns 1 written, -2 id taken. Idempotent: the cluster client resends a
/// call whose connection dropped, and an entry with this very version,
/// creation, update and expiry time is this call's own.
pub(super) const ROTATE_IN: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then
  if kind(KEYS[1]) == 'live' then
    local mine = redis.call('HMGET', KEYS[1], 'v', 'm')
    if mine[1] == ARGV[3] and mine[2] == ARGV[5] then return 1 end
  end
  return -2
end
write_whole(KEYS[1], 2, ARGV[1])
return 1
"#;

/// The second step: KEYS[1] the old id's key; ARGV expected version, marker
/// ttl ms, the new id's key (kept in the marker). Returns 1 moved, 0
/// conflict, -1 missing. Idempotent: a marker pointing at this new key is
/// this call's own, resent.
pub(super) const ROTATE_OUT: &str = r#"
local k = kind(KEYS[1])
if k == 'tomb' and redis.call('HGET', KEYS[1], 'n') == ARGV[3] then return 1 end
if k ~= 'live' then return -1 end
if version(KEYS[1]) ~= tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'x', 'moved', 'n', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"#;

/// KEYS[1]; ARGV reason ('deleted' or 'moved'), ttl ms. A deletion keeps an
/// existing "moved" marker.
pub(super) const TOMBSTONE: &str = r#"
if ARGV[1] == 'deleted' and kind(KEYS[1]) == 'tomb' and redis.call('HGET', KEYS[1], 'x') == 'moved' then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'x', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"#;

/// KEYS: keys found by SCAN. Returns those holding a live session.
pub(super) const LIVE_KEYS: &str = r#"
local live = {}
for _, key in ipairs(KEYS) do
  local k = kind(key)
  if k == 'live' or (k == 'old' and redis.call('GET', key) ~= '!deleted') then table.insert(live, key) end
end
return live
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_gets_the_helpers_it_calls_and_theirs_before_it_and_no_others() {
        let patch = source(PATCH);
        for needed in ["meta", "put_meta", "call_range", "mark_quick"] {
            assert!(patch.contains(&format!("local function {needed}(")), "{needed} missing");
        }
        for unused in ["kind", "version", "write_whole", "unmark_quick"] {
            assert!(!patch.contains(&format!("local function {unused}(")), "{unused} included");
        }
        let at = |name: &str| patch.find(&format!("local function {name}(")).unwrap();
        assert!(at("call_range") < at("put_meta") && at("meta") < at("put_meta"));
        assert!(patch.ends_with(PATCH));
        // Through another helper: `write_whole` calls `call_range`.
        let insert = source(INSERT_IF_EMPTY);
        assert!(insert.contains("local function call_range(") && insert.contains("local function kind("));
        assert!(!insert.contains("local function meta("));
    }

    #[test]
    fn a_call_is_told_from_a_longer_name_and_a_definition() {
        assert!(calls("x = version(k)", "version"));
        assert!(!calls("x = put_meta(k)", "meta"));
        assert!(!calls("local function version(key)", "version"));
        assert!(!calls("unmark_quick(k, 1, 2, 1)", "mark_quick"));
    }
}
