import type { Config } from '../../config/load.js';
import { PipelineError, errorMessage } from '../../core/errors.js';
import { RedisKeys, STAT_FIELDS, minuteOf, windowMinutes as minutesOfWindow, windowStartMs } from './keys.js';
import { connectRedis, isTransientRedisError, type RedisClient } from './lua-script.js';
import { Memo } from './memo.js';
import { decodeRecent, type RecentEvent } from './recent-event.js';
import { DEFAULT_TOP_CACHE_MS } from './options.js';
import { topScript } from './top-script.js';

export type { RedisClient } from './lua-script.js';
export { windowStartMs } from './keys.js';
export type { RecentEvent } from './recent-event.js';

/**
 * Read-only views of the Redis sink's window, for the API. A window of `w` minutes (1 ≤ w ≤
 * REDIS_AGGREGATION_WINDOW_MINUTES) is the current clock minute plus the w - 1 minutes before it,
 * by event time. Every method is one round trip to Redis (top content: one Lua script over a
 * union cached in Redis for `cacheMs`, default 200 ms). Top content and content stats are also
 * cached in process for `cacheMs`, single-flight, so a burst of identical requests costs one Redis
 * call: results may be up to `cacheMs` old. Invalid arguments throw INVALID_VALUE; Redis failures
 * SERVICE_UNREACHABLE.
 */

export interface TopContentEntry {
  rank: number;
  content_id: string;
  slug: string | null;
  title: string | null;
  content_type: string | null;
  engagement_seconds: number;
  events: number;
}

export interface ContentStats {
  content_id: string;
  window_minutes: number;
  slug: string | null;
  title: string | null;
  content_type: string | null;
  events: number;
  plays: number;
  pauses: number;
  finishes: number;
  clicks: number;
  unique_users: number;
  total_engagement_seconds: number;
  avg_engagement_seconds: number | null;
  avg_engagement_pct: number | null;
  completion_rate: number | null;
  last_event_ts: string | null;
}

export interface RedisReaderOptions {
  prefix: string;
  windowMinutes: number;
  /** How long a top-content union (in Redis) and results (in process) are reused (ms); 0 = never. */
  cacheMs?: number;
  /** Cache results in process too (default true; off to measure the Redis path alone). */
  processCache?: boolean;
  /** The clock placing the window (tests pin it). */
  now?: () => number;
}

export const MAX_TOP_LIMIT = 10_000;

export class RedisReader {
  private readonly keys: RedisKeys;
  private readonly cacheMs: number;
  private readonly now: () => number;
  private readonly topMemo: Memo<TopContentEntry[]>;
  private readonly statsMemo: Memo<ContentStats | null>;
  readonly windowMinutes: number;

  constructor(
    private readonly client: RedisClient,
    opts: RedisReaderOptions,
  ) {
    this.keys = new RedisKeys(opts.prefix);
    this.windowMinutes = opts.windowMinutes;
    this.cacheMs = opts.cacheMs ?? DEFAULT_TOP_CACHE_MS;
    this.now = opts.now ?? Date.now;
    const memoMs = opts.processCache === false ? 0 : this.cacheMs;
    this.topMemo = new Memo(memoMs);
    this.statsMemo = new Memo(memoMs);
  }

  async topContent(opts: {
    limit: number;
    windowMinutes?: number;
    by?: 'engagement' | 'events';
  }): Promise<TopContentEntry[]> {
    const w = this.window(opts.windowMinutes);
    if (!Number.isInteger(opts.limit) || opts.limit < 1 || opts.limit > MAX_TOP_LIMIT) {
      throw new PipelineError('INVALID_VALUE', `limit accepts a whole number from 1 to ${MAX_TOP_LIMIT}`);
    }
    const by = opts.by === 'events' ? 'cnt' : 'eng';
    const nowMs = this.now();
    const key = `${by}|${w}|${opts.limit}|${minuteOf(nowMs)}`;
    const entries = await this.topMemo.get(key, Date.now(), () => guard(this.loadTop(by, w, opts.limit, nowMs)));
    return entries.map((e) => ({ ...e }));
  }

  private async loadTop(by: 'eng' | 'cnt', w: number, limit: number, nowMs: number): Promise<TopContentEntry[]> {
    const minutes = minutesOfWindow(nowMs, w);
    const current = minuteOf(nowMs);
    const keys = [
      this.keys.topCache('eng', current, w),
      this.keys.topCache('cnt', current, w),
      ...minutes.map((m) => this.keys.engagement(m)),
      ...minutes.map((m) => this.keys.count(m)),
    ];
    const flat = (await topScript.run(this.client, keys, [
      String(this.cacheMs),
      String(limit),
      by,
      String(w),
      `${this.keys.root}content:`,
    ])) as string[];
    const out: TopContentEntry[] = [];
    for (let i = 0; i + 5 < flat.length; i += 6) {
      const primary = Number(flat[i + 1]);
      const secondary = Number(flat[i + 2]);
      const engMs = by === 'eng' ? primary : secondary;
      const events = by === 'eng' ? secondary : primary;
      out.push({
        rank: out.length + 1,
        content_id: flat[i] as string,
        slug: orNull(flat[i + 3]),
        title: orNull(flat[i + 4]),
        content_type: orNull(flat[i + 5]),
        engagement_seconds: engMs / 1000,
        events,
      });
    }
    return out;
  }

  /** Null when the content had no event in the window and its metadata is unknown. */
  async contentStats(contentId: string, windowMinutes?: number): Promise<ContentStats | null> {
    const w = this.window(windowMinutes);
    const nowMs = this.now();
    const stats = await this.statsMemo.get(`${w}|${minuteOf(nowMs)}|${contentId}`, Date.now(), () =>
      guard(this.loadStats(contentId, w, nowMs)),
    );
    return stats && { ...stats };
  }

  private async loadStats(contentId: string, w: number, nowMs: number): Promise<ContentStats | null> {
    const minutes = minutesOfWindow(nowMs, w);
    const [meta, uniqueUsers, ...buckets] = await Promise.all([
      this.client.hmGet(this.keys.content(contentId), ['slug', 'title', 'type']),
      this.client.pfCount(minutes.map((m) => this.keys.users(m, contentId))),
      ...minutes.map((m) => this.client.hGet(this.keys.stats(m), contentId)),
    ]);
    const sum = Object.fromEntries(STAT_FIELDS.map((f) => [f, 0])) as Record<(typeof STAT_FIELDS)[number], number>;
    for (const bucket of buckets) {
      if (typeof bucket !== 'string') continue;
      const values = bucket.split(',');
      STAT_FIELDS.forEach((f, i) => {
        const v = Number(values[i] ?? 0);
        sum[f] = f === 'last' ? Math.max(sum[f], v) : sum[f] + v;
      });
    }
    const [slug, title, type] = (meta as Array<string | null>).map((v) => orNull(v));
    if (sum.n === 0 && slug === null && title === null) return null;
    return {
      content_id: contentId,
      window_minutes: w,
      slug: slug ?? null,
      title: title ?? null,
      content_type: type ?? null,
      events: sum.n,
      plays: sum.play,
      pauses: sum.pause,
      finishes: sum.finish,
      clicks: sum.click,
      unique_users: Number(uniqueUsers),
      total_engagement_seconds: sum.es / 1000,
      avg_engagement_seconds: sum.esn > 0 ? round3(sum.es / sum.esn / 1000) : null,
      avg_engagement_pct: sum.pctn > 0 ? round3(sum.pct / sum.pctn / 1000) : null,
      completion_rate: sum.play > 0 ? round3(sum.finish / sum.play) : null,
      last_event_ts: sum.last > 0 ? new Date(sum.last).toISOString() : null,
    };
  }

  /**
   * Up to `count` events of the content within the window, newest event time first, as stored
   * projections (recent-event.ts) joined with the content's current metadata. One round trip.
   */
  async recentEvents(contentId: string, count: number): Promise<RecentEvent[]> {
    if (!Number.isInteger(count) || count < 1)
      throw new PipelineError('INVALID_VALUE', 'count accepts a whole number ≥ 1');
    const oldest = windowStartMs(this.now(), this.windowMinutes);
    const [members, meta] = await guard(
      Promise.all([
        this.client.zRange(this.keys.recent(contentId), '+inf', oldest, {
          BY: 'SCORE',
          REV: true,
          LIMIT: { offset: 0, count },
        }),
        this.client.hmGet(this.keys.content(contentId), ['slug', 'title', 'type', 'length']),
      ]),
    );
    const [slug, title, type, length] = (meta as Array<string | null>).map((v) => orNull(v));
    const content = {
      slug: slug ?? null,
      title: title ?? null,
      type: type ?? null,
      length: length == null ? null : Number(length),
    };
    return members.map((m) => decodeRecent(m, contentId, content));
  }

  /** Events counted in the window (all content). */
  async windowCount(windowMinutes?: number): Promise<number> {
    const minutes = minutesOfWindow(this.now(), this.window(windowMinutes));
    const values = await guard(this.client.mGet(minutes.map((m) => this.keys.total(m))));
    return values.reduce((acc, v) => acc + Number(v ?? 0), 0);
  }

  /** True when Redis answers; never throws (for /health). */
  async ping(): Promise<boolean> {
    try {
      return (await this.client.ping()) === 'PONG';
    } catch {
      return false;
    }
  }

  private window(requested: number | undefined): number {
    const w = requested ?? this.windowMinutes;
    if (!Number.isInteger(w) || w < 1 || w > this.windowMinutes) {
      throw new PipelineError(
        'INVALID_VALUE',
        `window accepts a whole number of minutes from 1 to ${this.windowMinutes}`,
      );
    }
    return w;
  }
}

/** A reader on its own connection (fails fast while Redis is unreachable), for the API process. */
export async function createRedisReader(
  config: Config,
  opts: Partial<RedisReaderOptions> = {},
): Promise<{ reader: RedisReader; close(): Promise<void> }> {
  const client = await guard(connectRedis(config.redisUrl, 'engage-api-reader'));
  const reader = new RedisReader(client, {
    prefix: config.REDIS_KEY_PREFIX,
    windowMinutes: config.REDIS_AGGREGATION_WINDOW_MINUTES,
    ...opts,
  });
  return {
    reader,
    async close() {
      if (client.isOpen) await client.close().catch(() => client.destroy());
    },
  };
}

/** Redis failures surface as SERVICE_UNREACHABLE (retriable when transient), for the API's 503. */
async function guard<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof PipelineError) throw err;
    throw new PipelineError('SERVICE_UNREACHABLE', `Redis: ${errorMessage(err)}`, {
      retriable: isTransientRedisError(err),
      cause: err,
    });
  }
}

function orNull(v: string | null | undefined): string | null {
  return v === undefined || v === null || v === '' ? null : v;
}

function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}
