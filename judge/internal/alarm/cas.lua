-- Compare-and-set of one alarm transition (package alarm, Store.Write).
-- KEYS: alarm hash, active zset, event list, stream.
-- ARGV: expStatus expStep expTime newStatus newStep newTime priority
--       eventJSON listLen streamMaxLen id endpoint
-- The stored (status, currentStep, eventTime) must equal ARGV[1..3]
-- ("" status = no state; "\0wrongtype" = the key exists but is not a
-- hash). Then the state, the active set, the event list and the stream
-- are written and {1} returned; otherwise {0, status, step, time} of what
-- is stored, so the judge decides again.
-- A list, set or stream key of another type fails the whole write before
-- anything is written (an error in a script does not undo what it wrote).
local function check(key, want)
  local t = redis.call('TYPE', key)['ok']
  if t ~= 'none' and t ~= want then
    return redis.error_reply('WRONGTYPE ' .. key .. ' holds a ' .. t .. ', not a ' .. want)
  end
  return nil
end
local bad = check(KEYS[2], 'zset')
  or (tonumber(ARGV[9]) > 0 and check(KEYS[3], 'list'))
  or (tonumber(ARGV[10]) > 0 and check(KEYS[4], 'stream'))
if bad then
  return bad
end
local cur = redis.pcall('HMGET', KEYS[1], 'status', 'currentStep', 'eventTime')
local st, cs, et
if type(cur) == 'table' and cur.err then
  st, cs, et = '\0wrongtype', '', ''
else
  st, cs, et = cur[1] or '', cur[2] or '', cur[3] or ''
end
if st ~= ARGV[1] or (st ~= '' and (cs ~= ARGV[2] or et ~= ARGV[3])) then
  return {0, st, cs, et}
end
if st == '\0wrongtype' then
  redis.call('DEL', KEYS[1])
end
redis.call('HSET', KEYS[1], 'status', ARGV[4], 'currentStep', ARGV[5], 'eventTime', ARGV[6], 'priority', ARGV[7])
if ARGV[4] == 'PROBLEM' then
  redis.call('ZADD', KEYS[2], ARGV[6], ARGV[11])
else
  redis.call('ZREM', KEYS[2], ARGV[11])
end
local n = tonumber(ARGV[9])
if n > 0 then
  redis.call('LPUSH', KEYS[3], ARGV[8])
  redis.call('LTRIM', KEYS[3], 0, n - 1)
end
local m = tonumber(ARGV[10])
if m > 0 then
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', m, '*', 'id', ARGV[11], 'status', ARGV[4], 'priority', ARGV[7], 'endpoint', ARGV[12], 'event', ARGV[8])
end
return {1}
