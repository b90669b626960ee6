import type { Config } from '../../src/config/load.js';
import type { ContentRow } from '../../src/core/types.js';
import { connectConfiguredRegistry } from '../../src/kafka/schema-registry/from-config.js';
import type { AvroWriter } from '../../src/kafka/schema-registry/avro-writer.js';
import type { SchemaRegistry } from '../../src/kafka/schema-registry/registry.js';
import { eventRow, type EventFields, type Msg } from '../processor/kafka-helpers.js';

/**
 * Debezium-compatible Avro change events for tests, as the CDC writes them with
 * KAFKA_VALUE_FORMAT=avro (docs/cdc.md): value subject `<topic>-value`, record `Envelope` of
 * namespace `<server>.<schema>.<table>` with optional `before`/`after` rows, `source`, `op` and
 * `ts_ms`; key `Key` of the primary key. int8 → long, int4 → int, text/uuid/timestamptz/jsonb →
 * string; value columns optional.
 */

/** The settings of a test in Avro mode; the registry is SCHEMA_REGISTRY_URL when the run sets it, else the stack's. */
export function avroOverrides(): Record<string, string> {
  const url = process.env.SCHEMA_REGISTRY_URL;
  return { KAFKA_VALUE_FORMAT: 'avro', ...(url ? { SCHEMA_REGISTRY_URL: url } : {}) };
}

const opt = (type: string) => ({ type: ['null', type], default: null });

const SOURCE = {
  type: 'record',
  name: 'Source',
  namespace: 'io.debezium.connector.postgresql',
  fields: [
    { name: 'version', type: 'string' },
    { name: 'connector', type: 'string' },
    { name: 'name', type: 'string' },
    { name: 'ts_ms', type: 'long' },
    { name: 'snapshot', ...opt('string') },
    { name: 'db', type: 'string' },
    { name: 'sequence', ...opt('string') },
    { name: 'schema', type: 'string' },
    { name: 'table', type: 'string' },
    { name: 'txId', ...opt('long') },
    { name: 'lsn', ...opt('long') },
  ],
};

function envelope(table: string, columns: Array<Record<string, unknown>>): Record<string, unknown> {
  const ns = `engage.public.${table}`;
  const value = { type: 'record', name: 'Value', namespace: ns, fields: columns };
  return {
    type: 'record',
    name: 'Envelope',
    namespace: ns,
    fields: [
      { name: 'before', type: ['null', value], default: null },
      { name: 'after', type: ['null', `${ns}.Value`], default: null },
      { name: 'source', type: SOURCE },
      { name: 'op', type: 'string' },
      { name: 'ts_ms', ...opt('long') },
    ],
  };
}

const EVENT_COLUMNS = [
  { name: 'id', type: 'long' },
  { name: 'content_id', ...opt('string') },
  { name: 'user_id', ...opt('string') },
  { name: 'event_type', ...opt('string') },
  { name: 'event_ts', ...opt('string') },
  { name: 'duration_ms', ...opt('int') },
  { name: 'device', ...opt('string') },
  { name: 'raw_payload', ...opt('string') },
];

export const EVENT_ENVELOPE = envelope('engagement_events', EVENT_COLUMNS);
/** A later version: a column `campaign` added (schema drift). */
export const EVENT_ENVELOPE_V2 = envelope('engagement_events', [
  ...EVENT_COLUMNS,
  { name: 'campaign', ...opt('string') },
]);
export const EVENT_KEY = {
  type: 'record',
  name: 'Key',
  namespace: 'engage.public.engagement_events',
  fields: [{ name: 'id', type: 'long' }],
};
export const CONTENT_ENVELOPE = envelope('content', [
  { name: 'id', type: 'string' },
  { name: 'slug', ...opt('string') },
  { name: 'title', ...opt('string') },
  { name: 'content_type', ...opt('string') },
  { name: 'length_seconds', ...opt('int') },
  { name: 'publish_ts', ...opt('string') },
]);
export const CONTENT_KEY = {
  type: 'record',
  name: 'Key',
  namespace: 'engage.public.content',
  fields: [{ name: 'id', type: 'string' }],
};

let lsn = 5_000_000;

function source(table: string, tsMs: number): Record<string, unknown> {
  const at = (lsn += 64);
  return {
    version: '1.0.0-test',
    connector: 'postgresql',
    name: 'engage',
    ts_ms: tsMs,
    snapshot: 'false',
    db: 'engagement_db',
    sequence: `["${at}","${at}"]`,
    schema: 'public',
    table,
    txId: 1,
    lsn: at,
  };
}

/** Writers of the input topics' Avro records (the CDC's shapes), registered on the configured registry. */
export class AvroInput {
  private constructor(
    readonly registry: SchemaRegistry,
    private readonly config: Config,
    private readonly w: Record<'event' | 'eventV2' | 'eventKey' | 'content' | 'contentKey', AvroWriter>,
  ) {}

  static async open(config: Config): Promise<AvroInput> {
    const sr = await connectConfiguredRegistry(config);
    const events = config.KAFKA_TOPIC_ENGAGEMENT_EVENTS;
    const content = config.KAFKA_TOPIC_CONTENT;
    return new AvroInput(sr, config, {
      event: await sr.writer(events, 'value', EVENT_ENVELOPE),
      eventV2: await sr.writer(events, 'value', EVENT_ENVELOPE_V2),
      eventKey: await sr.writer(events, 'key', EVENT_KEY),
      content: await sr.writer(content, 'value', CONTENT_ENVELOPE),
      contentKey: await sr.writer(content, 'key', CONTENT_KEY),
    });
  }

  /** An insert of `engagement_events` (op c, or r); extra columns need `v2`. */
  event(f: EventFields, opts: { op?: 'c' | 'r' | 'u' | 'd'; v2?: boolean } = {}): Msg {
    const op = opts.op ?? 'c';
    const row = { ...eventRow(f), id: Number(f.id) };
    const now = Date.now();
    const value = (opts.v2 ? this.w.eventV2 : this.w.event).encode({
      before: op === 'd' ? row : null,
      after: op === 'd' ? null : row,
      source: source('engagement_events', now),
      op,
      ts_ms: now + 1,
    });
    return {
      topic: this.config.KAFKA_TOPIC_ENGAGEMENT_EVENTS,
      key: this.w.eventKey.encode({ id: Number(f.id) }),
      value,
    };
  }

  content(row: ContentRow, op: 'c' | 'u' = 'c'): Msg {
    const now = Date.now();
    const value = this.w.content.encode({
      before: null,
      after: row,
      source: source('content', now),
      op,
      ts_ms: now + 1,
    });
    return { topic: this.config.KAFKA_TOPIC_CONTENT, key: this.w.contentKey.encode({ id: row.id }), value };
  }
}
