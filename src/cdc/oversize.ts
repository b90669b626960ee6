import { TRUNCATED_VALUE } from '../core/types.js';
import type { Emit } from './envelope.js';

/**
 * Change events that would not fit in a Kafka record. Decided before producing, against the
 * configured limit (never by a broker error, which would fail the Kafka transaction and with it the
 * session, forever): an event whose key + value exceed `maxEventBytes` goes on with its largest
 * values replaced by TRUNCATED_VALUE and a `truncated` block that names them and says where the
 * original row is (docs/cdc.md "Oversized records"):
 *
 * ```json
 * "truncated": {"fields": ["after.raw_payload"], "original_bytes": 2097877, "limit_bytes": 983616,
 *               "ref": {"db": "engagement_db", "schema": "public", "table": "engagement_events",
 *                       "key": {"id": "123"}, "lsn": 24153560}}
 * ```
 *
 * Key columns are never replaced (they are the reference). Values are replaced largest first until
 * the event fits; should it still not fit with every other value replaced (thousands of columns),
 * `before` and `after` keep only their key columns and `fields` lists `before.*` / `after.*`.
 */

/** Stands for a value left out of an oversized event (as Debezium's `__debezium_unavailable_value`). */
export { TRUNCATED_VALUE };

/**
 * What a change event may take of KAFKA_MESSAGE_MAX_BYTES: the rest is left for the record's framing
 * and for what the processor adds to the event it enriches (the content's metadata).
 */
export const EVENT_HEADROOM_BYTES = 16 * 1024;

export function maxEventBytes(maxMessageBytes: number): number {
  return maxMessageBytes - EVENT_HEADROOM_BYTES;
}

export interface TruncatedInfo {
  fields: string[];
  original_bytes: number;
  limit_bytes: number;
  ref: { db: unknown; schema: unknown; table: unknown; key: unknown; lsn: unknown };
}

type Row = Record<string, unknown>;

function isRow(v: unknown): v is Row {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function utf8Bytes(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** True when the record certainly fits without measuring (UTF-16 length × 3 bounds its UTF-8 size). */
function surelyFits(key: string | null, value: string, limit: number): boolean {
  return (value.length + (key === null ? 0 : key.length)) * 3 <= limit;
}

/**
 * The event `value` (envelope JSON text) made to fit `limit` bytes together with `key`, or null when
 * it fits as it is. Pure.
 */
export function fitEvent(
  key: string | null,
  value: string,
  limit: number,
): { value: string; info: TruncatedInfo } | null {
  if (surelyFits(key, value, limit)) return null;
  const keyBytes = key === null ? 0 : utf8Bytes(key);
  const original = keyBytes + utf8Bytes(value);
  if (original <= limit) return null;
  const env = JSON.parse(value) as Row;
  const keyObj: unknown = key === null ? null : JSON.parse(key);
  const keyCols = new Set(isRow(keyObj) ? Object.keys(keyObj) : []);
  const source = isRow(env.source) ? env.source : {};
  const info: TruncatedInfo = {
    fields: [],
    original_bytes: original,
    limit_bytes: limit,
    ref: {
      db: source.db ?? null,
      schema: source.schema ?? null,
      table: source.table ?? null,
      key: keyObj,
      lsn: source.lsn ?? null,
    },
  };
  const render = () => JSON.stringify({ ...env, truncated: info });
  const fits = (text: string) => keyBytes + utf8Bytes(text) <= limit;
  // Every replaceable value, largest first.
  const candidates: Array<{ image: 'before' | 'after'; column: string; bytes: number }> = [];
  for (const image of ['after', 'before'] as const) {
    const row = env[image];
    if (!isRow(row)) continue;
    for (const [column, v] of Object.entries(row)) {
      if (keyCols.has(column) || v === null || v === TRUNCATED_VALUE) continue;
      const bytes = typeof v === 'string' ? utf8Bytes(v) : utf8Bytes(JSON.stringify(v));
      if (bytes > TRUNCATED_VALUE.length) candidates.push({ image, column, bytes });
    }
  }
  candidates.sort((a, b) => b.bytes - a.bytes);
  let remaining = original;
  for (const c of candidates) {
    (env[c.image] as Row)[c.column] = TRUNCATED_VALUE;
    info.fields.push(`${c.image}.${c.column}`);
    remaining -= c.bytes;
    // Measure only once the estimate says it may fit (the first replacement usually does it).
    if (remaining <= limit) {
      const text = render();
      if (fits(text)) return { value: text, info };
    }
  }
  for (const image of ['before', 'after'] as const) {
    const row = env[image];
    if (!isRow(row)) continue;
    env[image] = Object.fromEntries(Object.entries(row).filter(([column]) => keyCols.has(column)));
    info.fields = info.fields.filter((f) => !f.startsWith(`${image}.`));
    info.fields.push(`${image}.*`);
  }
  return { value: render(), info };
}

/**
 * Wraps an Emit so that every change event fits `limit` bytes (key + value); `onTruncated` hears of
 * each event that was cut. Tombstones (null values) pass as they are. Costs one multiplication per
 * record unless the record is within a factor of 3 of the limit.
 */
export function sizeGuardedEmit(
  emit: Emit,
  limit: number,
  onTruncated: (topic: string, key: string | null, info: TruncatedInfo) => void,
): Emit {
  return (topic, key, value) => {
    if (value === null || surelyFits(key, value, limit)) return emit(topic, key, value);
    const fitted = fitEvent(key, value, limit);
    if (fitted === null) return emit(topic, key, value);
    onTruncated(topic, key, fitted.info);
    emit(topic, key, fitted.value);
  };
}
