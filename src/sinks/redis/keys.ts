/**
 * The Redis key layout of the Redis sink, in one place (docs/redis.md describes it). Every key
 * starts with the configured REDIS_KEY_PREFIX followed by `rs:`, so the sink never touches the
 * heartbeats (`<prefix>hb:`) or anything else sharing the prefix.
 *
 * Time is cut in minutes of EVENT time: minute `m` = floor(event_ts_ms / 60000). A window of `w`
 * minutes read at clock minute `c` is the buckets `c - w + 1 … c` (the current, partial minute plus
 * the `w - 1` full minutes before it).
 *
 *   <p>rs:state                 HASH  epoch → random id; o:<topic>:<partition> → next offset
 *   <p>rs:m:<m>:eng             ZSET  content id → engagement milliseconds in minute m
 *   <p>rs:m:<m>:cnt             ZSET  content id → events in minute m
 *   <p>rs:m:<m>:n               STR   events in minute m (all content)
 *   <p>rs:m:<m>:ids             SET   events applied in minute m, `<event_id>.<µs in the minute>` (the dedupe ledger)
 *   <p>rs:m:<m>:s               HASH  content id → "n,play,pause,finish,click,es,esn,pct,pctn,last"
 *   <p>rs:m:<m>:u:<content>     HLL   user ids
 *   <p>rs:recent:<content>      ZSET  event projection (recent-event.ts) scored by event time (ms), capped
 *   <p>rs:content:<content>     HASH  slug title type length (no TTL: the content's metadata)
 *   <p>rs:top:<by>:<c>:<w>      ZSET  cached union of `w` minute ZSETs at clock minute c (short TTL)
 *
 * Minute keys expire at the start of minute m + window + 1 plus a margin: the last window that
 * reads minute m is the one at clock minute m + window - 1, so they outlive it by a full minute
 * plus the margin. A recent list expires likewise, counted from the clock minute of its last write.
 */

export const MINUTE_MS = 60_000;

/** The per-minute stats of one content, in their stored order (all integers; engagement in ms, pct in milli-percent). */
export const STAT_FIELDS = ['n', 'play', 'pause', 'finish', 'click', 'es', 'esn', 'pct', 'pctn', 'last'] as const;
export type StatField = (typeof STAT_FIELDS)[number];

export function minuteOf(ms: number): number {
  return Math.floor(ms / MINUTE_MS);
}

/** The minutes a window of `windowMinutes` covers at clock time `nowMs`, oldest first. */
export function windowMinutes(nowMs: number, windowMinutes: number): number[] {
  const current = minuteOf(nowMs);
  const out: number[] = [];
  for (let m = current - windowMinutes + 1; m <= current; m++) out.push(m);
  return out;
}

/**
 * The first event time (ms) a window of `windowMinutes` covers at clock time `nowMs`: events with
 * event_ts ≥ this (and in or before the current minute) are counted. For checks against the source.
 */
export function windowStartMs(nowMs: number, windowMinutes: number): number {
  return (minuteOf(nowMs) - windowMinutes + 1) * MINUTE_MS;
}

/** Unix time (seconds) at which the keys of minute `m` expire. */
export function minuteExpireAt(m: number, windowMinutes: number, marginSeconds: number): number {
  return (m + windowMinutes + 1) * 60 + marginSeconds;
}

export class RedisKeys {
  /** Everything the sink owns starts with this (`<prefix>rs:`). */
  readonly root: string;

  constructor(readonly prefix: string) {
    this.root = `${prefix}rs:`;
  }

  state(): string {
    return `${this.root}state`;
  }

  static offsetField(topic: string, partition: number): string {
    return `o:${topic}:${partition}`;
  }

  minute(m: number): string {
    return `${this.root}m:${m}:`;
  }

  engagement(m: number): string {
    return `${this.minute(m)}eng`;
  }

  count(m: number): string {
    return `${this.minute(m)}cnt`;
  }

  total(m: number): string {
    return `${this.minute(m)}n`;
  }

  ids(m: number): string {
    return `${this.minute(m)}ids`;
  }

  stats(m: number): string {
    return `${this.minute(m)}s`;
  }

  users(m: number, contentId: string): string {
    return `${this.minute(m)}u:${contentId}`;
  }

  recent(contentId: string): string {
    return `${this.root}recent:${contentId}`;
  }

  content(contentId: string): string {
    return `${this.root}content:${contentId}`;
  }

  topCache(by: 'eng' | 'cnt', currentMinute: number, windowMinutes: number): string {
    return `${this.root}top:${by}:${currentMinute}:${windowMinutes}`;
  }
}
