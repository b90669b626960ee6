import { LuaScript } from './lua-script.js';

/**
 * The one Lua script that applies a partition batch (ARGV built by batch-payload.ts) atomically:
 * state check, offset and event-id dedupe, aggregate increments, recent events, content metadata
 * and the partition's next offset all commit together or not at all.
 *
 *   KEYS[1] = <prefix>rs:state     ARGV = see batch-payload.ts (read front to back)
 *
 * The payload carries increments already aggregated per (minute, content) for a candidate set the
 * sink believes new. The script accepts that set whole or not at all:
 *   { 0, epoch, stored next, applied }        applied (every candidate was new)
 *   { 1, epoch, stored next }                 whole batch already applied (a replay)
 *   { 2, epoch, stored next, id, … }          not applied: the stored offset is above the first
 *                                             candidate, or the ledgers hold the listed ids; the
 *                                             sink drops those and sends the rest again
 *   { -1, reason, epoch or '' }               state lost or rolled back
 * Every check runs before the first data write, so a rejected payload changes nothing (only the
 * epoch of an empty state hash may be created, which the next attempt expects anyway). The
 * script builds key names from the root argument (standalone Redis; on a cluster the prefix must
 * be one hash tag). Numbers go to Redis through %.0f, never Lua's default %.14g, so large
 * integers stay exact.
 */
const SOURCE = `
local state = KEYS[1]
local i = 0
local function nx() i = i + 1; return ARGV[i] end
local function I(x) return string.format('%.0f', x) end
local root, xe, ne, f, xn, nxo = nx(), nx(), nx(), nx(), nx(), nx()
local first = tonumber(nx())
local w, mg, dd, rc, cm, ng = tonumber(nx()), tonumber(nx()), nx() == '1', tonumber(nx()), tonumber(nx()), tonumber(nx())

local epoch = redis.call('HGET', state, 'epoch')
if epoch and xe ~= '' and xe ~= epoch then return {-1, 'epoch changed', epoch} end
if (not epoch) and xe ~= '' then return {-1, 'state missing', ''} end
local stored = redis.call('HGET', state, f)
local storedNum = -1
if stored then storedNum = tonumber(stored) end
if xn ~= '' and ((not stored) or storedNum < tonumber(xn)) then
  return {-1, 'offset rolled back', epoch or ''}
end
if not epoch then
  epoch = ne
  redis.call('HSET', state, 'epoch', epoch)
end
if stored and storedNum >= tonumber(nxo) then return {1, epoch, stored} end
if stored and first >= 0 and storedNum > first then return {2, epoch, stored} end

-- Runs cmd on key with ARGV[a..b] (or list[a..b]) as arguments, 1,000 at a time (Lua's unpack
-- limit); concatenates table replies. Pair lists stay aligned (1,000 is even).
local function ranged(cmd, key, list, a, b)
  local out = {}
  while a <= b do
    local e = math.min(a + 999, b)
    local r = redis.call(cmd, key, unpack(list, a, e))
    if type(r) == 'table' then for _, x in ipairs(r) do out[#out + 1] = x end end
    a = e + 1
  end
  return out
end

-- Pass 1, read only: is every candidate id new to its minute's ledger?
local groups, present = {}, {}
for g = 1, ng do
  local m = tonumber(nx())
  local n = tonumber(nx())
  groups[g] = {m, i + 1, i + n}
  if dd and n > 0 then
    local hit = ranged('SMISMEMBER', root .. 'm:' .. I(m) .. ':ids', ARGV, i + 1, i + n)
    for k = 1, n do if hit[k] == 1 then present[#present + 1] = ARGV[i + k] end end
  end
  i = i + n
end
if #present > 0 then
  local reply = {2, epoch, stored or ''}
  for _, id in ipairs(present) do reply[#reply + 1] = id end
  return reply
end

-- Pass 2: apply.
local applied = 0
for g = 1, ng do
  local m, a, b = groups[g][1], groups[g][2], groups[g][3]
  local mk = root .. 'm:' .. I(m) .. ':'
  local at = (m + w + 1) * 60 + mg
  if dd and b >= a then ranged('SADD', mk .. 'ids', ARGV, a, b) end
  local total, nc = tonumber(nx()), tonumber(nx())
  local cids, at0 = {}, {}
  for c = 1, nc do
    cids[c] = nx()
    at0[c] = i
    i = i + 10
    i = i + tonumber(nx())
  end
  local sk = mk .. 's'
  local cur = ranged('HMGET', sk, cids, 1, nc)
  local hset, zeng, zcnt = {}, {}, {}
  for c = 1, nc do
    local cid, s = cids[c], at0[c]
    local st = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
    if cur[c] then
      local j = 0
      for x in string.gmatch(cur[c], '[^,]+') do
        j = j + 1
        st[j] = tonumber(x)
      end
    end
    for j = 1, 9 do st[j] = st[j] + tonumber(ARGV[s + j]) end
    local last = tonumber(ARGV[s + 10])
    if last > st[10] then st[10] = last end
    for j = 1, 10 do st[j] = I(st[j]) end
    hset[#hset + 1] = cid
    hset[#hset + 1] = table.concat(st, ',')
    zeng[#zeng + 1] = st[6]
    zeng[#zeng + 1] = cid
    zcnt[#zcnt + 1] = st[1]
    zcnt[#zcnt + 1] = cid
    local uk = mk .. 'u:' .. cid
    local nu = tonumber(ARGV[s + 11])
    if nu > 0 then ranged('PFADD', uk, ARGV, s + 12, s + 11 + nu) elseif not cur[c] then redis.call('PFADD', uk) end
    -- A new (minute, content) HLL gets its fixed expiry once.
    if not cur[c] then redis.call('EXPIREAT', uk, at) end
  end
  ranged('HSET', sk, hset, 1, #hset)
  ranged('ZADD', mk .. 'eng', zeng, 1, #zeng)
  ranged('ZADD', mk .. 'cnt', zcnt, 1, #zcnt)
  redis.call('INCRBY', mk .. 'n', total)
  for _, suffix in ipairs({'s', 'eng', 'cnt', 'n', 'ids'}) do redis.call('EXPIREAT', mk .. suffix, at) end
  applied = applied + total
end

for _ = 1, tonumber(nx()) do
  local cid, slug, title, ctype, len = nx(), nx(), nx(), nx(), nx()
  redis.call('HSET', root .. 'content:' .. cid, 'slug', slug, 'title', title, 'type', ctype, 'length', len)
end

-- Recent events live as long as the newest window that can show them (clock minute based, so a
-- batch of late events never shortens it).
local rat = (cm + w + 1) * 60 + mg
for _ = 1, tonumber(nx()) do
  local rk = root .. 'recent:' .. nx()
  local k = tonumber(nx())
  if k > 0 then
    ranged('ZADD', rk, ARGV, i + 1, i + 2 * k)
    i = i + 2 * k
    redis.call('ZREMRANGEBYRANK', rk, 0, -(rc + 1))
    redis.call('EXPIREAT', rk, rat)
  end
end

redis.call('HSET', state, f, nxo)
return {0, epoch, nxo, applied}
`;

export const applyScript = new LuaScript('apply-batch', SOURCE);

/** The script's reply, decoded. */
export type ApplyResult =
  | { status: 'applied'; epoch: string; storedNext: string; applied: number }
  | { status: 'replayed'; epoch: string; storedNext: string }
  | { status: 'retry'; storedNext: string | null; present: string[] }
  | { status: 'lost'; reason: string; epoch: string };

export function decodeApplyReply(reply: unknown): ApplyResult {
  if (!Array.isArray(reply) || typeof reply[0] !== 'number')
    throw new Error(`unexpected apply-script reply: ${JSON.stringify(reply)}`);
  const [code, a, b, ...rest] = reply as [number, unknown, unknown, ...unknown[]];
  if (code === -1) return { status: 'lost', reason: String(a), epoch: String(b ?? '') };
  if (code === 1) return { status: 'replayed', epoch: String(a), storedNext: String(b) };
  if (code === 2) return { status: 'retry', storedNext: b === '' ? null : String(b), present: rest.map(String) };
  return { status: 'applied', epoch: String(a), storedNext: String(b), applied: Number(rest[0]) };
}
