import { LuaScript } from './lua-script.js';

/**
 * Top content in one round trip: the window's engagement and event-count unions are computed with
 * ZUNIONSTORE into two short-lived cache keys (named after the clock minute and window length, so
 * a new minute never reads an old union), reused while they live, then the top `limit` by one
 * measure is returned with the other measure and the content metadata.
 *
 *   KEYS[1] engagement cache   KEYS[2] count cache   KEYS[3 … 2+w] minute engagement ZSETs
 *   KEYS[3+w … 2+2w] minute count ZSETs
 *   ARGV[1] cache ms (0 = no cache: compute, read, delete)   ARGV[2] limit   ARGV[3] 'eng' | 'cnt'
 *   ARGV[4] w   ARGV[5] content metadata key prefix (<prefix>rs:content:)
 *
 * Returns a flat array: content id, primary score, secondary score, slug, title, type ('' = none),
 * repeated, best first (ties: higher content id first, Redis's ZRANGE REV order).
 */
const SOURCE = `
local cacheMs = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local w = tonumber(ARGV[4])
local engDest, cntDest = KEYS[1], KEYS[2]
if cacheMs == 0 or redis.call('EXISTS', engDest, cntDest) < 2 then
  local engKeys, cntKeys = {}, {}
  for i = 1, w do
    engKeys[i] = KEYS[2 + i]
    cntKeys[i] = KEYS[2 + w + i]
  end
  redis.call('ZUNIONSTORE', engDest, w, unpack(engKeys))
  redis.call('ZUNIONSTORE', cntDest, w, unpack(cntKeys))
  if cacheMs > 0 then
    redis.call('PEXPIRE', engDest, cacheMs)
    redis.call('PEXPIRE', cntDest, cacheMs)
  end
end
local primary, secondary = engDest, cntDest
if ARGV[3] == 'cnt' then primary, secondary = cntDest, engDest end
local top = redis.call('ZRANGE', primary, 0, limit - 1, 'REV', 'WITHSCORES')
local out = {}
for i = 1, #top, 2 do
  local cid = top[i]
  local meta = redis.call('HMGET', ARGV[5] .. cid, 'slug', 'title', 'type')
  out[#out + 1] = cid
  out[#out + 1] = top[i + 1]
  out[#out + 1] = redis.call('ZSCORE', secondary, cid) or '0'
  out[#out + 1] = meta[1] or ''
  out[#out + 1] = meta[2] or ''
  out[#out + 1] = meta[3] or ''
end
if cacheMs == 0 then redis.call('DEL', engDest, cntDest) end
return out
`;

export const topScript = new LuaScript('top-content', SOURCE);
