-- GCRA over one key: take up to ARGV[3] tokens at once.
-- KEYS[1]  the key; its value is the theoretical arrival time (TAT), microseconds of Redis' clock
-- ARGV[1]  emission interval: microseconds per token (window / limit), at least 1
-- ARGV[2]  burst: tokens a full bucket holds
-- ARGV[3]  tokens wanted
-- Returns {granted, left in the bucket, retry-after us (when none granted), reset us (until full)}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then
  tat = now
end
local room = math.floor((now + burst * interval - tat) / interval)
local grant = math.min(want, room)
if grant <= 0 then
  return {0, 0, tat - now - (burst - 1) * interval, tat - now}
end
tat = tat + grant * interval
redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.floor((tat - now) / 1000) + 1)
return {grant, room - grant, 0, tat - now}
