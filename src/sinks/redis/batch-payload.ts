import { PipelineError } from '../../core/errors.js';
import { instantMicros } from '../../core/event-identity.js';
import { EVENT_TYPES, type EnrichedEvent } from '../../core/types.js';
import type { SinkBatch, SinkRecord } from '../../core/sink-contract.js';
import { RedisKeys, minuteOf } from './keys.js';
import { encodeRecent } from './recent-event.js';

/**
 * Pure translation of one partition batch into the ARGV of the apply script (apply-script.ts).
 * Everything that can be computed without Redis is computed here, so the script's work per event
 * is one ledger lookup and one ledger insert: the event-time minute of each event, the too-old
 * filter, records below the stored offset, events flagged `implausible_duration` (kept out of
 * every aggregate: docs/redis.md), duplicate events inside the batch, events the ledger is known
 * to hold, and then the increments pre-aggregated per (minute, content) — counts per type,
 * integer engagement (ms) and pct (milli-percent) so sums are exact and order-independent, the
 * newest event time, the distinct users — plus the newest recent-list members per content and the
 * content metadata not yet written. The script accepts the whole candidate set or nothing: when
 * its ledger or stored offset says some candidates are not new, it writes nothing and names them,
 * and the sink builds the payload again without them (`minOffset`, `exclude`).
 *
 * ARGV, all strings, read in order by the script:
 *   root, expected epoch ('' = none), new epoch, offset field, expected next ('' = unknown),
 *   next offset, first candidate offset (-1 = none), window, margin, dedupe 1|0, recent cap,
 *   clock minute, G = number of minute groups;
 *   G × [minute, I, I ledger members]                              (I = 0 when dedupe is off)
 *   G × [events, C, C × [content id, n, play, pause, finish, click, es, esn, pct, pctn, last, U, U user ids]]
 *   M, M × [content id, slug, title, type, length]
 *   R, R × [content id, K, K × [event time ms, member]]
 */

export type MetaRow = [string, string, string, string, string];

export interface BuiltPayload {
  args: string[];
  /** Records whose event time is before the window (not added anywhere). */
  tooOld: number;
  /** Records that failed `checkRecord` (the runtime normally sends these to the DLQ first). */
  invalid: number;
  /** Valid records inside the window: what a replayed batch skips. */
  inWindow: number;
  /** Records below `minOffset` (applied by an earlier batch). */
  below: number;
  /** Repeated events inside the batch, and events in `exclude`. */
  duplicates: number;
  /** Records flagged `implausible_duration`: left out of the aggregates (their offset still moves). */
  implausible: number;
  /** Events sent to the script: all applied when it accepts the payload. */
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
  root: string;
  expectedEpoch: string | null;
  newEpoch: string;
  expectedNext: string | null;
  /** Content metadata already written under the current epoch (content id → signature). */
  metaKnown: ReadonlyMap<string, string>;
  /** Records below this offset were applied by an earlier batch (the stored next offset). */
  minOffset: number;
  /** Ledger members (`ledgerMember`) the minute ledgers already hold (named by a rejected attempt). */
  exclude: ReadonlySet<string>;
}

/** Increments of one (minute, content); `stats()` lists them in the stats hash's field order. */
class ContentAgg {
  n = 0;
  /** play, pause, finish, click. */
  readonly types = [0, 0, 0, 0];
  es = 0;
  esn = 0;
  pct = 0;
  pctn = 0;
  last = 0;
  readonly users = new Set<string>();

  stats(): string[] {
    const [play, pause, finish, click] = this.types;
    return [this.n, play, pause, finish, click, this.es, this.esn, this.pct, this.pctn, this.last].map(String);
  }
}

const TYPE_INDEX: Record<string, number> = Object.fromEntries(EVENT_TYPES.map((t, i) => [t, i + 1]));
const OFFSET = /^\d+$/;

/** The sink's record check: the fields the aggregates need must be present and sane. */
export function checkRecord(record: SinkRecord): PipelineError | null {
  const bad = eventTimeOrProblem(record);
  if (typeof bad === 'number') return null;
  return new PipelineError('INVALID_VALUE', `redis sink: ${bad}`, { details: { offset: record.offset } });
}

/** The event time (ms) of a record the aggregates can use, or what is wrong with it. */
function eventTimeOrProblem(record: SinkRecord): number | string {
  const e = record.event as Partial<EnrichedEvent> | null | undefined;
  if (!e || typeof e !== 'object') return 'record has no event';
  if (typeof e.event_id !== 'string' || e.event_id === '') return 'event_id missing';
  if (typeof e.content_id !== 'string' || e.content_id === '') return 'content_id missing';
  if (typeof e.event_type !== 'string' || TYPE_INDEX[e.event_type] === undefined)
    return `event_type ${String(e.event_type)} unknown`;
  const ts = typeof e.event_ts === 'string' ? Date.parse(e.event_ts) : Number.NaN;
  if (!Number.isFinite(ts)) return 'event_ts is not a timestamp';
  if (!OFFSET.test(record.offset) || !Number.isSafeInteger(Number(record.offset)))
    return 'offset is not a safe integer';
  for (const [name, v] of [
    ['engagement_seconds', e.engagement_seconds],
    ['engagement_pct', e.engagement_pct],
  ] as const) {
    if (v !== null && v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < 0))
      return `${name} must be a number ≥ 0 or null`;
  }
  return ts;
}

/**
 * An event's member of its minute's dedupe ledger: `<event_id>.<µs of event_ts within the minute>`.
 * With the minute the ledger stands for, that is the event's (event_id, event_ts) identity
 * (src/core/event-identity.ts) — an id reused by a new event after a sequence reset is not taken
 * for the old event — in a few bytes more than the id alone.
 */
export function ledgerMember(eventId: string, eventTs: string): string {
  const us = instantMicros(eventTs);
  return us === null ? `${eventId}.${eventTs}` : `${eventId}.${us % 60_000_000n}`;
}

/** Whether the processor flagged the event's duration implausible (enrich.ts `durationFlag`). */
export function isImplausible(e: Pick<EnrichedEvent, 'quality_flags'>): boolean {
  return Array.isArray(e.quality_flags) && e.quality_flags.includes('implausible_duration');
}

export function buildPayload(batch: SinkBatch, opts: PayloadOptions): BuiltPayload {
  const currentMinute = minuteOf(opts.nowMs);
  const firstMinute = currentMinute - opts.windowMinutes + 1;
  const minutes = new Map<number, { ids: string[]; contents: Map<string, ContentAgg> }>();
  const latest = new Map<string, EnrichedEvent>();
  const recent = new Map<string, Array<{ ev: EnrichedEvent; ts: number }>>();
  const seen = new Set<string>();
  const out = { tooOld: 0, invalid: 0, inWindow: 0, below: 0, duplicates: 0, implausible: 0, candidates: 0 };
  let first = -1;
  for (const record of batch.records) {
    const ts = eventTimeOrProblem(record);
    if (typeof ts !== 'number') {
      out.invalid++;
      continue;
    }
    const m = minuteOf(ts);
    if (m < firstMinute) {
      out.tooOld++;
      continue;
    }
    out.inWindow++;
    const off = Number(record.offset);
    if (off < opts.minOffset) {
      out.below++;
      continue;
    }
    const ev = record.event;
    if (isImplausible(ev)) {
      out.implausible++;
      continue;
    }
    const member = opts.dedupe ? ledgerMember(ev.event_id, ev.event_ts) : '';
    if (opts.dedupe) {
      // The first occurrence of an event (lowest offset) is the one that can be applied.
      if (seen.has(member) || opts.exclude.has(member)) {
        out.duplicates++;
        continue;
      }
      seen.add(member);
    }
    if (first < 0) first = off;
    out.candidates++;
    let minute = minutes.get(m);
    if (!minute) minutes.set(m, (minute = { ids: [], contents: new Map() }));
    minute.ids.push(member);
    let agg = minute.contents.get(ev.content_id);
    if (!agg) minute.contents.set(ev.content_id, (agg = new ContentAgg()));
    agg.n++;
    const t = (TYPE_INDEX[ev.event_type] as number) - 1;
    agg.types[t] = (agg.types[t] as number) + 1;
    if (typeof ev.engagement_seconds === 'number') {
      agg.es += Math.round(ev.engagement_seconds * 1000);
      agg.esn++;
    }
    if (typeof ev.engagement_pct === 'number') {
      agg.pct += Math.round(ev.engagement_pct * 1000);
      agg.pctn++;
    }
    if (ts > agg.last) agg.last = ts;
    if (ev.user_id) agg.users.add(ev.user_id);
    latest.set(ev.content_id, ev);
    let list = recent.get(ev.content_id);
    if (!list) recent.set(ev.content_id, (list = []));
    list.push({ ev, ts });
  }

  const args = [
    opts.root,
    opts.expectedEpoch ?? '',
    opts.newEpoch,
    RedisKeys.offsetField(batch.topic, batch.partition),
    opts.expectedNext ?? '',
    batch.nextOffset,
    String(first),
    String(opts.windowMinutes),
    String(opts.marginSeconds),
    opts.dedupe ? '1' : '0',
    String(opts.recentEvents),
    String(currentMinute),
    String(minutes.size),
  ];
  for (const [m, { ids }] of minutes) {
    args.push(String(m));
    if (opts.dedupe) args.push(String(ids.length), ...ids);
    else args.push('0');
  }
  for (const { ids, contents } of minutes.values()) {
    args.push(String(ids.length), String(contents.size));
    for (const [contentId, agg] of contents) args.push(contentId, ...agg.stats(), String(agg.users.size), ...agg.users);
  }

  const metaWritten = new Map<string, string>();
  const metaArgs: string[] = [];
  for (const [contentId, ev] of latest) {
    const row: MetaRow = [
      contentId,
      ev.content_slug ?? '',
      ev.content_title ?? '',
      ev.content_type ?? '',
      ev.length_seconds == null ? '' : String(ev.length_seconds),
    ];
    const signature = row.join('\u0000');
    if (opts.metaKnown.get(contentId) === signature) continue;
    metaArgs.push(...row);
    metaWritten.set(contentId, signature);
  }
  args.push(String(metaWritten.size), ...metaArgs);

  args.push(String(recent.size));
  for (const [contentId, list] of recent) {
    const newest =
      list.length > opts.recentEvents ? list.sort((a, b) => b.ts - a.ts).slice(0, opts.recentEvents) : list;
    args.push(contentId, String(newest.length));
    for (const { ev, ts } of newest) args.push(String(ts), encodeRecent(ev));
  }
  return { args, ...out, metaWritten };
}
