import { PipelineError } from '../../core/errors.js';
import { EVENT_TYPES, type EnrichedEvent } from '../../core/types.js';
import type { SinkBatch, SinkRecord } from '../contract.js';
import { RedisKeys, minuteOf } from './keys.js';

/**
 * Pure translation of one partition batch into the arguments of the apply script
 * (src/sinks/redis/apply-script.ts). Everything that can be computed without Redis is computed
 * here: the event-time minute of each event, the too-old filter, grouping by (minute, content),
 * integer engagement (ms) and pct (milli-percent) so sums are exact and order-independent, the
 * newest-first recent candidates and the content metadata. The script then only decides, per
 * event, whether it is new (offset at or above the stored next offset, event id not yet in the
 * minute's ledger) and applies the increments of the new ones.
 */

/** One event as the script sees it: [offset, event id, user id or '', type 1-4, eng ms | false, pct milli | false, ts ms]. */
export type ScriptEvent = [number, string, string, number, number | false, number | false, number];

export interface ScriptPayload {
  /** Epoch the sink expects in the state hash ('' = none known yet: adopt or create). */
  e: string;
  /** Epoch to create when the state hash is empty and none was expected. */
  ne: string;
  /** Offset field in the state hash. */
  f: string;
  /** Next offset the sink last saw stored for this partition ('' = unknown). */
  xn: string;
  /** Next offset to store (the batch's `nextOffset`). */
  nx: string;
  w: number;
  mg: number;
  /** 1 = dedupe by event id, 0 = off (benchmark only). */
  dd: 0 | 1;
  /** Recent-events cap per content, and the clock minute (recent lists expire after its window). */
  rc: number;
  cm: number;
  /** Per event-time minute: [minute, [[content id, events in offset order], …]]. */
  g: Array<[number, Array<[string, ScriptEvent[]]>]>;
  /** Content metadata not yet written under this state epoch: [content id, slug, title, type or '', length or '']. */
  meta: MetaRow[];
  /** Recent candidates per content: [content id, [[ts ms, ARGV index of the JSON, event id, offset], …]]. */
  r: Array<[string, Array<[number, number, string, number]>]>;
}

export type MetaRow = [string, string, string, string, string];

export interface BuiltPayload {
  payload: ScriptPayload;
  /** ARGV[3…]: the JSON of each recent candidate (kept out of the payload to avoid double encoding). */
  recentJson: string[];
  /** Records whose event time is before the window (not added anywhere). */
  tooOld: number;
  /** Records that failed `checkRecord` (the runtime normally sends these to the DLQ first). */
  invalid: number;
  /** Records passed to the script. */
  candidates: number;
  /** Metadata signatures (content id → signature) the payload writes; remember them once applied. */
  metaWritten: Map<string, string>;
}

export interface PayloadOptions {
  windowMinutes: number;
  marginSeconds: number;
  recentEvents: number;
  dedupe: boolean;
  nowMs: number;
  expectedEpoch: string | null;
  newEpoch: string;
  expectedNext: string | null;
  /** Content metadata already written under the current epoch (content id → signature). */
  metaKnown: ReadonlyMap<string, string>;
}

const TYPE_INDEX: Record<string, number> = Object.fromEntries(EVENT_TYPES.map((t, i) => [t, i + 1]));

/** The sink's record check: the fields the aggregates need must be present and sane. */
export function checkRecord(record: SinkRecord): PipelineError | null {
  const e = record.event as Partial<EnrichedEvent> | null | undefined;
  const bad = (what: string) => new PipelineError('INVALID_VALUE', `redis sink: ${what}`, { details: { offset: record.offset } });
  if (!e || typeof e !== 'object') return bad('record has no event');
  if (typeof e.event_id !== 'string' || e.event_id === '') return bad('event_id missing');
  if (typeof e.content_id !== 'string' || e.content_id === '') return bad('content_id missing');
  if (typeof e.event_type !== 'string' || TYPE_INDEX[e.event_type] === undefined) return bad(`event_type ${String(e.event_type)} unknown`);
  if (typeof e.event_ts !== 'string' || !Number.isFinite(Date.parse(e.event_ts))) return bad('event_ts is not a timestamp');
  if (!/^\d+$/.test(record.offset) || !Number.isSafeInteger(Number(record.offset))) return bad('offset is not a safe integer');
  for (const [name, v] of [['engagement_seconds', e.engagement_seconds], ['engagement_pct', e.engagement_pct]] as const) {
    if (v !== null && v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < 0)) return bad(`${name} must be a number ≥ 0 or null`);
  }
  return null;
}

function scaled(v: number | null | undefined): number | false {
  return typeof v === 'number' ? Math.round(v * 1000) : false;
}

export function buildPayload(batch: SinkBatch, opts: PayloadOptions): BuiltPayload {
  const currentMinute = minuteOf(opts.nowMs);
  const firstMinute = currentMinute - opts.windowMinutes + 1;
  const minutes = new Map<number, Map<string, ScriptEvent[]>>();
  const latest = new Map<string, EnrichedEvent>();
  const recent = new Map<string, Map<string, { ev: EnrichedEvent; ts: number; off: number }>>();
  let tooOld = 0;
  let invalid = 0;
  let candidates = 0;
  for (const record of batch.records) {
    if (checkRecord(record) !== null) {
      invalid++;
      continue;
    }
    const ev = record.event;
    const ts = Date.parse(ev.event_ts);
    const m = minuteOf(ts);
    if (m < firstMinute) {
      tooOld++;
      continue;
    }
    candidates++;
    const off = Number(record.offset);
    let byContent = minutes.get(m);
    if (!byContent) minutes.set(m, (byContent = new Map()));
    let events = byContent.get(ev.content_id);
    if (!events) byContent.set(ev.content_id, (events = []));
    events.push([off, ev.event_id, ev.user_id ?? '', TYPE_INDEX[ev.event_type] ?? 0, scaled(ev.engagement_seconds), scaled(ev.engagement_pct), ts]);
    latest.set(ev.content_id, ev);
    let perContent = recent.get(ev.content_id);
    if (!perContent) recent.set(ev.content_id, (perContent = new Map()));
    // The first occurrence of an event id (lowest offset) is the one the script can apply.
    if (!perContent.has(ev.event_id)) perContent.set(ev.event_id, { ev, ts, off });
  }
  const meta: MetaRow[] = [];
  const metaWritten = new Map<string, string>();
  for (const [contentId, ev] of latest) {
    const row: MetaRow = [contentId, ev.content_slug ?? '', ev.content_title ?? '', ev.content_type ?? '', ev.length_seconds == null ? '' : String(ev.length_seconds)];
    const signature = row.join('\u0000');
    if (opts.metaKnown.get(contentId) === signature) continue;
    meta.push(row);
    metaWritten.set(contentId, signature);
  }
  const recentJson: string[] = [];
  const r: ScriptPayload['r'] = [];
  for (const [contentId, byId] of recent) {
    const newest = [...byId.values()].sort((a, b) => b.ts - a.ts).slice(0, opts.recentEvents);
    r.push([
      contentId,
      newest.map(({ ev, ts, off }) => {
        recentJson.push(JSON.stringify(ev));
        return [ts, recentJson.length + 2, ev.event_id, off] as [number, number, string, number];
      }),
    ]);
  }
  return {
    payload: {
      e: opts.expectedEpoch ?? '',
      ne: opts.newEpoch,
      f: RedisKeys.offsetField(batch.topic, batch.partition),
      xn: opts.expectedNext ?? '',
      nx: batch.nextOffset,
      w: opts.windowMinutes,
      mg: opts.marginSeconds,
      dd: opts.dedupe ? 1 : 0,
      rc: opts.recentEvents,
      cm: currentMinute,
      g: [...minutes].map(([m, byContent]) => [m, [...byContent]]),
      meta,
      r,
    },
    recentJson,
    tooOld,
    invalid,
    candidates,
    metaWritten,
  };
}
