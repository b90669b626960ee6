import { LuaScript } from './lua-script.js';

/**
 * The one Lua script that applies a partition batch (built by batch-payload.ts) atomically:
 * state check, per-event offset and event-id dedupe, aggregate increments, recent events, content
 * metadata and the partition's next offset all commit together or not at all.
 *
 *   KEYS[1] = <prefix>rs:state     ARGV[1] = payload JSON     ARGV[2] = key root (<prefix>rs:)
 *   ARGV[3…] = JSON of the recent-event candidates (referenced by index from the payload)
 *
 * Returns one of
 *   { 0, epoch, stored next, applied, duplicates, below stored offset }   applied
 *   { 1, epoch, stored next, 0, 0, 0 }                                     whole batch already applied
 *   { -1, reason, epoch or '' }                                            state lost or rolled back
 *
 * All checks run before the first write, so a rejected batch changes nothing. The script builds
 * key names from ARGV[2] (standalone Redis; on a cluster the prefix must be one hash tag).
 * Numbers go to Redis through %.0f, never Lua's default %.14g, so large integers stay exact.
 */
const SOURCE = `
local state = KEYS[1]
local P = cjson.decode(ARGV[1])
local root = ARGV[2]
local function I(x) return string.format('%.0f', x) end

local epoch = redis.call('HGET', state, 'epoch')
if epoch and P.e ~= '' and P.e ~= epoch then return {-1, 'epoch changed', epoch} end
if (not epoch) and P.e ~= '' then return {-1, 'state missing', ''} end
local stored = redis.call('HGET', state, P.f)
local storedNum = -1
if stored then storedNum = tonumber(stored) end
if P.xn ~= '' and ((not stored) or storedNum < tonumber(P.xn)) then
  return {-1, 'offset rolled back', epoch or ''}
end
if not epoch then
  epoch = P.ne
  redis.call('HSET', state, 'epoch', epoch)
end
local nextNum = tonumber(P.nx)
if stored and storedNum >= nextNum then return {1, epoch, stored, 0, 0, 0} end

-- Runs cmd on key with the list's items as arguments, 1,000 at a time (Lua's unpack limit);
-- concatenates table replies. Pair lists stay aligned (1,000 is even).
local function chunked(cmd, key, list)
  local out = {}
  for i = 1, #list, 1000 do
    local r = redis.call(cmd, key, unpack(list, i, math.min(i + 999, #list)))
    if type(r) == 'table' then for _, x in ipairs(r) do out[#out + 1] = x end end
  end
  return out
end

local applied, dups, below = 0, 0, 0
local fresh, seen = {}, {}
for _, mg in ipairs(P.g) do
  local m = mg[1]
  local mk = root .. 'm:' .. I(m) .. ':'
  local cands = {}
  for _, cg in ipairs(mg[2]) do
    for _, ev in ipairs(cg[2]) do
      if ev[1] < storedNum then
        below = below + 1
      elseif P.dd == 1 and seen[ev[2]] then
        dups = dups + 1
      else
        seen[ev[2]] = true
        ev[8] = cg[1]
        cands[#cands + 1] = ev
      end
    end
  end
  if P.dd == 1 and #cands > 0 then
    local ids = {}
    for i, ev in ipairs(cands) do ids[i] = ev[2] end
    local present = chunked('SMISMEMBER', mk .. 'ids', ids)
    local kept, add = {}, {}
    for i, ev in ipairs(cands) do
      if present[i] == 1 then
        dups = dups + 1
      else
        kept[#kept + 1] = ev
        add[#add + 1] = ev[2]
      end
    end
    if #add > 0 then chunked('SADD', mk .. 'ids', add) end
    cands = kept
  end
  if #cands > 0 then
    -- Per content: n play pause finish click es esn pct pctn last, and the users.
    local order, inc = {}, {}
    for _, ev in ipairs(cands) do
      local cid = ev[8]
      local a = inc[cid]
      if not a then
        a = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, users = {}}
        inc[cid] = a
        order[#order + 1] = cid
      end
      a[1] = a[1] + 1
      a[1 + ev[4]] = a[1 + ev[4]] + 1
      if ev[5] then a[6] = a[6] + ev[5]; a[7] = a[7] + 1 end
      if ev[6] then a[8] = a[8] + ev[6]; a[9] = a[9] + 1 end
      if ev[7] > a[10] then a[10] = ev[7] end
      if ev[3] ~= '' then a.users[#a.users + 1] = ev[3] end
      fresh[ev[2]] = ev[1]
    end
    applied = applied + #cands
    local at = (m + P.w + 1) * 60 + P.mg
    local sk = mk .. 's'
    local cur = chunked('HMGET', sk, order)
    local hset, zeng, zcnt = {}, {}, {}
    for i, cid in ipairs(order) do
      local a = inc[cid]
      local st = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
      if cur[i] then
        local j = 0
        for x in string.gmatch(cur[i], '[^,]+') do
          j = j + 1
          st[j] = tonumber(x)
        end
      end
      for j = 1, 9 do st[j] = st[j] + a[j] end
      if a[10] > st[10] then st[10] = a[10] end
      for j = 1, 10 do st[j] = I(st[j]) end
      hset[#hset + 1] = cid
      hset[#hset + 1] = table.concat(st, ',')
      zeng[#zeng + 1] = st[6]
      zeng[#zeng + 1] = cid
      zcnt[#zcnt + 1] = st[1]
      zcnt[#zcnt + 1] = cid
      local uk = mk .. 'u:' .. cid
      if #a.users > 0 then chunked('PFADD', uk, a.users) elseif not cur[i] then redis.call('PFADD', uk) end
      -- A new (minute, content) HLL gets its fixed expiry once.
      if not cur[i] then redis.call('EXPIREAT', uk, at) end
    end
    chunked('HSET', sk, hset)
    chunked('ZADD', mk .. 'eng', zeng)
    chunked('ZADD', mk .. 'cnt', zcnt)
    redis.call('INCRBY', mk .. 'n', #cands)
    for _, suffix in ipairs({'s', 'eng', 'cnt', 'n', 'ids'}) do redis.call('EXPIREAT', mk .. suffix, at) end
  end
end

for _, c in ipairs(P.meta) do
  redis.call('HSET', root .. 'content:' .. c[1], 'slug', c[2], 'title', c[3], 'type', c[4], 'length', c[5])
end

-- Recent events live as long as the newest window that can show them (clock minute based, so a
-- batch of late events never shortens it).
local rat = (P.cm + P.w + 1) * 60 + P.mg
for _, rc in ipairs(P.r) do
  local args = {}
  for _, e in ipairs(rc[2]) do
    if fresh[e[3]] == e[4] then
      args[#args + 1] = I(e[1])
      args[#args + 1] = ARGV[e[2]]
    end
  end
  if #args > 0 then
    local rk = root .. 'recent:' .. rc[1]
    chunked('ZADD', rk, args)
    redis.call('ZREMRANGEBYRANK', rk, 0, -(P.rc + 1))
    redis.call('EXPIREAT', rk, rat)
  end
end

redis.call('HSET', state, P.f, P.nx)
return {0, epoch, P.nx, applied, dups, below}
`;

export const applyScript = new LuaScript('apply-batch', SOURCE);

/** The script's reply, decoded. */
export type ApplyResult =
  | { status: 'applied' | 'replayed'; epoch: string; storedNext: string; applied: number; duplicates: number; belowOffset: number }
  | { status: 'lost'; reason: string; epoch: string };

export function decodeApplyReply(reply: unknown): ApplyResult {
  if (!Array.isArray(reply) || typeof reply[0] !== 'number') throw new Error(`unexpected apply-script reply: ${JSON.stringify(reply)}`);
  const [code, a, b, c, d, e] = reply as [number, unknown, unknown, unknown, unknown, unknown];
  if (code === -1) return { status: 'lost', reason: String(a), epoch: String(b ?? '') };
  return {
    status: code === 1 ? 'replayed' : 'applied',
    epoch: String(a),
    storedNext: String(b),
    applied: Number(c),
    duplicates: Number(d),
    belowOffset: Number(e),
  };
}
