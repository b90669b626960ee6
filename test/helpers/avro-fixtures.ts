import { tableSchemas, type AvroRecord } from '../../src/cdc/avro/schema.js';
import { OID } from '../../src/cdc/render.js';
import type { Config } from '../../src/config/load.js';
import type { ContentRow } from '../../src/core/types.js';
import { connectConfiguredRegistry } from '../../src/kafka/schema-registry/from-config.js';
import type { AvroWriter } from '../../src/kafka/schema-registry/avro-writer.js';
import type { SchemaRegistry } from '../../src/kafka/schema-registry/registry.js';
import { eventRow, type EventFields, type Msg } from '../processor/kafka-helpers.js';

/**
 * Debezium-compatible Avro change events for tests, as the CDC writes them with
 * KAFKA_VALUE_FORMAT=avro (docs/cdc.md): the CDC's own schemas of the two tables (value subject
 * `<topic>-value`, record `Envelope` of namespace `engage.public.<table>`; key `Key` of the primary
 * key), written here straight to Kafka so the processor's and the sinks' tests need no CDC.
 */

/** The settings of a test in Avro mode; the registry is SCHEMA_REGISTRY_URL when the run sets it, else the stack's. */
export function avroOverrides(): Record<string, string> {
  const url = process.env.SCHEMA_REGISTRY_URL;
  return { KAFKA_VALUE_FORMAT: 'avro', ...(url ? { SCHEMA_REGISTRY_URL: url } : {}) };
}

/** text: not in render.ts's OID list (any type it does not name is a string). */
const TEXT = 25;

const EVENT_COLUMNS = [
  { name: 'id', typeOid: OID.int8 },
  { name: 'content_id', typeOid: OID.uuid },
  { name: 'user_id', typeOid: OID.uuid },
  { name: 'event_type', typeOid: TEXT },
  { name: 'event_ts', typeOid: OID.timestamptz },
  { name: 'duration_ms', typeOid: OID.int4 },
  { name: 'device', typeOid: TEXT },
  { name: 'raw_payload', typeOid: OID.jsonb },
];

/** The CDC's own schemas of the tables (src/cdc/avro/schema.ts), server name `engage`. */
const eventSchemas = (columns: typeof EVENT_COLUMNS) =>
  tableSchemas('engage', { schema: 'public', table: 'engagement_events', columns, primaryKey: ['id'] });
const contentSchemas = tableSchemas('engage', {
  schema: 'public',
  table: 'content',
  columns: [
    { name: 'id', typeOid: OID.uuid },
    { name: 'slug', typeOid: TEXT },
    { name: 'title', typeOid: TEXT },
    { name: 'content_type', typeOid: TEXT },
    { name: 'length_seconds', typeOid: OID.int4 },
    { name: 'publish_ts', typeOid: OID.timestamptz },
  ],
  primaryKey: ['id'],
});

export const EVENT_ENVELOPE = eventSchemas(EVENT_COLUMNS).value;
/** A later version: a column `campaign` added (schema drift). */
export const EVENT_ENVELOPE_V2 = eventSchemas([...EVENT_COLUMNS, { name: 'campaign', typeOid: TEXT }]).value;
export const EVENT_KEY = eventSchemas(EVENT_COLUMNS).key as AvroRecord;
export const CONTENT_ENVELOPE = contentSchemas.value;
export const CONTENT_KEY = contentSchemas.key as AvroRecord;

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
