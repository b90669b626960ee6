import type { ContentRow, QualityFlag } from '../core/types.js';
import { durationFlag, engagementPct, lengthFlag, type EnrichMeta } from './enrich.js';
import type { ValidEvent } from './validate.js';

/**
 * The stream processor's hot path: the enriched record's JSON text built directly from a validated
 * row and its content, byte for byte what `JSON.stringify(enrichValidated(…).event)` gives (same
 * keys, same order, same number and string formatting; test/processor/enrich.test.ts checks every
 * case), without the intermediate EnrichedEvent object. The content's part of the text is rendered
 * once per content version. Pure.
 */

const contentParts = new WeakMap<ContentRow, string>();

function num(n: number | null | undefined): string {
  return typeof n === 'number' && Number.isFinite(n) ? String(n) : 'null';
}

/** The last timestamp rendered per meta field: a batch shares processed_ts_ms, a source transaction source_ts_ms. */
const lastTs = { source: -1, sourceText: '', processed: -1, processedText: '' };

function sourceTsText(ms: number): string {
  if (ms !== lastTs.source) {
    lastTs.source = ms;
    lastTs.sourceText = num(ms);
  }
  return lastTs.sourceText;
}

function processedTsText(ms: number): string {
  if (ms !== lastTs.processed) {
    lastTs.processed = ms;
    lastTs.processedText = num(ms);
  }
  return lastTs.processedText;
}

function str(s: string | null | undefined): string {
  return s === null || s === undefined ? 'null' : JSON.stringify(s);
}

/** `"content_slug":…,"content_title":…,"content_type":…,"length_seconds":…,"publish_ts":…` of one version. */
function contentPart(content: ContentRow): string {
  let part = contentParts.get(content);
  if (part === undefined) {
    part = `"content_slug":${str(content.slug)},"content_title":${str(content.title)},"content_type":${str(content.content_type)},"length_seconds":${num(content.length_seconds)},"publish_ts":${str(content.publish_ts)}`;
    contentParts.set(content, part);
  }
  return part;
}

function extraJson(extra: Record<string, unknown>): string {
  for (const _ in extra) return JSON.stringify(extra);
  return '{}';
}

function flagsJson(flags: QualityFlag[], more: QualityFlag | null, last: QualityFlag | null): string {
  if (flags.length === 0 && last === null) return more === null ? '[]' : `["${more}"]`;
  const all = more === null ? flags : [...flags, more];
  if (last !== null) return all.length === 0 ? `["${last}"]` : `["${all.join('","')}","${last}"]`;
  return `["${all.join('","')}"]`;
}

/**
 * The enriched record of a valid event joined with its (known) content. `event_id` is digits,
 * `event_type` one of the known types and `event_ts` canonical (validate.ts), so they need no escaping.
 */
export function enrichedJson(ev: ValidEvent, content: ContentRow, meta: EnrichMeta): string {
  const seconds = ev.duration_ms === null ? null : ev.duration_ms / 1000;
  const length = content.length_seconds;
  const ts = ev.event_ts;
  return (
    `{"schema_version":1,"event_id":"${ev.event_id}","content_id":${JSON.stringify(ev.content_id)},"user_id":${str(ev.user_id)},` +
    `"event_type":"${ev.event_type}","event_ts":"${ts}","duration_ms":${num(ev.duration_ms)},"device":${str(ev.device)},` +
    `"raw_payload":${JSON.stringify(ev.raw_payload)},"extra":${extraJson(ev.extra)},${contentPart(content)},` +
    `"engagement_seconds":${num(seconds)},"engagement_pct":${num(engagementPct(seconds, length))},"event_date":"${ts.slice(0, 10)}",` +
    `"event_hour":"${ts.slice(0, 13)}:00:00.000Z","source_ts_ms":${sourceTsText(meta.sourceTsMs)},"processed_ts_ms":${processedTsText(meta.processedTsMs)},` +
    `"origin":"${meta.origin}","quality_flags":${flagsJson(ev.flags, lengthFlag(seconds, length), durationFlag(ev.duration_ms, length))}}`
  );
}
