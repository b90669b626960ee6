/**
 * The records that travel between stages. Field names follow the source schema (snake_case), so a
 * row read from PostgreSQL, a Debezium change event's `after`, and an enriched record agree.
 */

export type EventType = 'play' | 'pause' | 'finish' | 'click';
export const EVENT_TYPES: readonly EventType[] = ['play', 'pause', 'finish', 'click'];
/**
 * What the CDC writes in place of a value too large for a Kafka record (an event then carries a
 * `truncated` block naming the field and the row: docs/cdc.md "Oversized records").
 */
export const TRUNCATED_VALUE = '__engage_truncated_value';

/**
 * What the CDC writes for an unchanged TOASTed value that no before image can supply (as Debezium
 * does); the processor's content table keeps the previous version's value instead.
 */
export const UNAVAILABLE_VALUE = '__debezium_unavailable_value';

export type ContentType = 'podcast' | 'newsletter' | 'video';
export const CONTENT_TYPES: readonly ContentType[] = ['podcast', 'newsletter', 'video'];

/** A `content` row as rendered in change events (timestamps as ISO-8601 UTC strings). */
export interface ContentRow {
  id: string;
  slug: string;
  title: string;
  content_type: ContentType | null;
  length_seconds: number | null;
  publish_ts: string;
}

/**
 * An `engagement_events` row as rendered in change events. `id` is a BIGSERIAL: it is rendered as a
 * string so values beyond 2^53 survive JSON. Extra columns added later appear as further keys.
 */
export interface EngagementEventRow {
  id: string;
  content_id: string | null;
  user_id: string | null;
  event_type: string | null;
  event_ts: string;
  duration_ms: number | null;
  device: string | null;
  raw_payload: unknown;
  [extra: string]: unknown;
}

/** Debezium's `source` block (PostgreSQL connector shape). */
export interface ChangeSource {
  version: string;
  connector: 'postgresql';
  name: string;
  ts_ms: number;
  snapshot: 'true' | 'false' | 'last' | 'first' | 'incremental';
  db: string;
  schema: string;
  table: string;
  txId: number | null;
  lsn: number | null;
  sequence?: string;
}

export type ChangeOp = 'c' | 'u' | 'd' | 'r';

/** Debezium JSON envelope (schemas disabled): what `engage cdc` writes to Kafka. */
export interface ChangeEvent<Row = Record<string, unknown>> {
  before: Row | null;
  after: Row | null;
  source: ChangeSource;
  op: ChangeOp;
  ts_ms: number;
}

export type QualityFlag =
  | 'missing_duration'
  | 'missing_length'
  | 'non_positive_length'
  | 'pct_above_100'
  | 'missing_user'
  | 'missing_device'
  /** raw_payload was too large for a Kafka record: the CDC replaced it by TRUNCATED_VALUE (docs/cdc.md). */
  | 'truncated_raw_payload'
  /** raw_payload was not valid JSON text: passed on as the original string. */
  | 'invalid_raw_payload'
  /**
   * duration_ms is beyond what a person can have spent (enrich.ts `durationFlag`, docs/processor.md):
   * kept out of the real-time aggregates and the warehouse views, stored with the flag.
   */
  | 'implausible_duration';

/** What the processor writes to the enriched topic, keyed by content id. */
export interface EnrichedEvent {
  schema_version: 1;
  event_id: string;
  content_id: string;
  user_id: string | null;
  event_type: EventType;
  event_ts: string;
  duration_ms: number | null;
  device: string | null;
  raw_payload: unknown;
  /** Source columns not in the original schema (schema drift), passed through untouched. */
  extra: Record<string, unknown>;
  content_slug: string;
  content_title: string;
  content_type: ContentType | null;
  length_seconds: number | null;
  publish_ts: string;
  engagement_seconds: number | null;
  engagement_pct: number | null;
  /** UTC date `YYYY-MM-DD` of event_ts. */
  event_date: string;
  /** UTC hour bucket of event_ts, ISO-8601 (`YYYY-MM-DDTHH:00:00.000Z`). */
  event_hour: string;
  /** Source commit time (ms since epoch): the start of end-to-end freshness. */
  source_ts_ms: number;
  /** When the processor produced this record (ms since epoch). */
  processed_ts_ms: number;
  /** `stream` for CDC-fed records, `backfill` for records re-read by the backfill mode. */
  origin: 'stream' | 'backfill';
  quality_flags: QualityFlag[];
}

/** A record parked in the dead-letter queue, with why and where it came from. */
export interface DlqEntry {
  reason: string;
  code: string;
  /** The stage that gave up on it: `processor`, `sink:redis`, `sink:warehouse`, `sink:external`, … */
  stage: string;
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  /** The key's bytes, base64, when they are not text (an Avro key: magic byte 0); `key` is then null. */
  key_base64?: string;
  /**
   * The original message value, base64 (bytes may not be valid UTF-8) — only its first bytes when
   * `value_truncated` (src/core/dlq-size.ts): the entry must fit in a Kafka record. The whole
   * record is then at `topic` / `partition` / `offset` (while the topic retains it).
   */
  value_base64: string | null;
  /** Set, with `value_bytes` (the original value's size), when `value_base64` holds only a prefix. */
  value_truncated?: true;
  value_bytes?: number;
  failed_at: string;
  attempts: number;
}
