import type { Heartbeat } from '../runtime/heartbeat.js';

/**
 * Reads the heartbeats every component process publishes to Redis (src/runtime/heartbeat.ts):
 * one key per live process, `<prefix>hb:<component>:<instance>`, expiring three intervals after
 * the last beat. A key present means the process beat within the TTL; the API also checks the
 * beat's own `sent_at` against `HEARTBEAT_FRESH_MS`, so a frozen clock or a stale value is not live.
 */

/** A heartbeat older than this (three 2-second intervals, the key's TTL) counts as missing. */
export const HEARTBEAT_FRESH_MS = 6000;

/** One sample of prom-client's `getMetricsAsJSON()` output (histograms name `_bucket`/`_sum`/`_count`). */
export interface PromSample {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

/** One metric family as prom-client renders it in JSON (`type`: counter, gauge, histogram, summary). */
export interface PromMetric {
  name: string;
  help: string;
  type: string;
  aggregator?: string;
  values: PromSample[];
}

export interface LiveHeartbeat extends Heartbeat {
  /** sent_at as ms since epoch. */
  sentAtMs: number;
  /** The published registry, as prom-client JSON (empty when malformed). */
  metricList: PromMetric[];
}

/** The subset of a node-redis client the reader needs (so any client flavour fits). */
export interface HeartbeatRedis {
  scanIterator(options: { MATCH: string; COUNT: number }): AsyncIterable<string[]>;
  mGet(keys: string[]): Promise<Array<string | null>>;
}

export function heartbeatPattern(prefix: string): string {
  return `${prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`)}hb:*`;
}

/** Every parseable heartbeat under the prefix, fresh or not (callers decide with `isFresh`). */
export async function readHeartbeats(redis: HeartbeatRedis, prefix: string): Promise<LiveHeartbeat[]> {
  const keys: string[] = [];
  for await (const batch of redis.scanIterator({ MATCH: heartbeatPattern(prefix), COUNT: 500 })) keys.push(...batch);
  if (keys.length === 0) return [];
  const values = await redis.mGet(keys);
  const out: LiveHeartbeat[] = [];
  for (const raw of values) {
    const hb = raw === null ? null : parseHeartbeat(raw);
    if (hb) out.push(hb);
  }
  out.sort((a, b) => a.component.localeCompare(b.component) || a.instance.localeCompare(b.instance));
  return out;
}

/** Parses one stored heartbeat; null when it is not a heartbeat (never throws). */
export function parseHeartbeat(raw: string): LiveHeartbeat | null {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const hb = value as Partial<Heartbeat>;
  if (typeof hb.component !== 'string' || typeof hb.instance !== 'string' || typeof hb.sent_at !== 'string')
    return null;
  const sentAtMs = Date.parse(hb.sent_at);
  if (!Number.isFinite(sentAtMs)) return null;
  const status = typeof hb.status === 'object' && hb.status !== null ? (hb.status as Record<string, unknown>) : {};
  return {
    component: hb.component,
    instance: hb.instance,
    pid: typeof hb.pid === 'number' ? hb.pid : 0,
    host: typeof hb.host === 'string' ? hb.host : '',
    started_at: typeof hb.started_at === 'string' ? hb.started_at : hb.sent_at,
    sent_at: hb.sent_at,
    status,
    metrics: hb.metrics,
    sentAtMs,
    metricList: Array.isArray(hb.metrics) ? (hb.metrics as unknown[]).filter(isMetric) : [],
  };
}

function isMetric(m: unknown): m is PromMetric {
  if (typeof m !== 'object' || m === null) return false;
  const o = m as Record<string, unknown>;
  return typeof o.name === 'string' && typeof o.type === 'string' && Array.isArray(o.values);
}

export function isFresh(hb: LiveHeartbeat, nowMs: number): boolean {
  return nowMs - hb.sentAtMs <= HEARTBEAT_FRESH_MS;
}
