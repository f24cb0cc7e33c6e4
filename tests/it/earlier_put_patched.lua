-- PUT_PATCHED as releases before the `m` field ran it (src/store/redis/scripts.rs
-- at 6f823d1, with its helpers): what a process of such a release still
-- running during a rolling deploy does to the cache after a database patch.
local function call_range(command, key, first, last)
  local i = first
  while i <= last do
    local stop = math.min(i + 399, last)
    redis.call(command, key, unpack(ARGV, i, stop))
    i = stop + 1
  end
end
local function hdel_range(key, first, last) call_range('HDEL', key, first, last) end
-- HSET of `field` = `value` and the pairs ARGV[first..last], in as
-- few calls as `unpack` allows.
local function hset_with(key, field, value, first, last)
  local stop = math.min(first + 397, last)
  redis.call('HSET', key, field, value, unpack(ARGV, first, stop))
  call_range('HSET', key, stop + 1, last)
end
-- The version of a live entry in one call; nil for an absent key, a
-- tombstone (a hash without 'v') or an entry in the older string format.
local function live_version(key)
  local v = redis.pcall('HGET', key, 'v')
  if type(v) ~= 'string' then return nil end
  return tonumber(v)
end
local function unmark_quick(key, first, last, step)
  local flags = {}
  for i = first, last, step do
    if string.sub(ARGV[i], 1, 2) == 'd:' then flags[#flags + 1] = 'q:' .. string.sub(ARGV[i], 3) end
  end
  for i = 1, #flags, 400 do
    redis.call('HDEL', key, unpack(flags, i, math.min(i + 399, #flags)))
  end
end

local current = live_version(KEYS[1])
local new = tonumber(ARGV[2])
if current == nil or current >= new then return 0 end
if current ~= new - 1 then
  redis.call('DEL', KEYS[1])
  return -1
end
local removed = tonumber(ARGV[3])
local items = tonumber(ARGV[4])
hdel_range(KEYS[1], 5, 4 + removed)
hset_with(KEYS[1], 'v', ARGV[2], 5 + removed, 4 + removed + items)
unmark_quick(KEYS[1], 5, 4 + removed + items, 1)
if ARGV[1] ~= '' then redis.call('PEXPIREAT', KEYS[1], ARGV[1]) end
return 1
