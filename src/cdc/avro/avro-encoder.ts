import { PipelineError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { AvroWriter } from '../../kafka/schema-registry/avro-writer.js';
import { subjectFor, type SchemaRegistry } from '../../kafka/schema-registry/registry.js';
import type { RecordEncoder } from '../txn-writer.js';
import { EventConverter } from './event-converter.js';
import { AvroSink } from './avro-sink.js';
import { JsonCursor } from './json-cursor.js';
import { describeKeyChange, describeValueChange } from './schema-change.js';
import { tableSchemas, type TableLayout, type TableSchemas } from './schema.js';
import { TextEncoder } from './text-encoder.js';

/**
 * The CDC's Avro side (KAFKA_VALUE_FORMAT=avro): registers each captured table's schemas
 * (schema.ts) where the CDC learns its columns, and encodes the change events' records in the
 * Confluent wire format as the TxnWriter produces them (its RecordEncoder).
 *
 * - `streamLayout` (a Relation message, before that relation's rows) and `snapshotLayout` (the
 *   initial snapshot's cursor, an incremental-snapshot chunk, before their rows are emitted)
 *   register the key and value schemas under `<topic>-key` / `<topic>-value` — an identical schema
 *   keeps its id, a changed one is a new version under the subject's rule — and make them the
 *   topic's schemas for the stream's records or the snapshot's (`op: "r"`), respectively: a chunk
 *   read before a DDL the stream has not reached yet keeps the columns it was read with.
 * - A refusal is SCHEMA_INCOMPATIBLE (fatal) naming the table, the columns, the change and the
 *   rule; nothing after it is written (the caller fails before that relation's rows).
 * - `encode` is synchronous: JSON text → wire format, read and written in one pass
 *   (text-encoder.ts) where the text has the renderer's shape; else (an oversized event's
 *   `truncated`, a value it does not mirror) JSON.parse → Avro object (event-converter.ts) →
 *   avsc. Both give the same bytes. Tombstones stay null values with an Avro key.
 */

interface Encoding {
  key: AvroWriter | null;
  value: AvroWriter;
  converter: EventConverter;
  text: TextEncoder;
  schemas: TableSchemas;
}

/** The event's `op` as its JSON text's tail says (the text encoder checks it as it reads). */
function opOf(value: string): string | undefined {
  const i = value.lastIndexOf(',"op":"');
  if (i < 0) return undefined;
  const end = value.indexOf('"', i + 7);
  return end < 0 ? undefined : value.slice(i + 7, end);
}

export class AvroEncoder implements RecordEncoder {
  /** topic → the schemas of the stream's records (the last Relation) and of the snapshot's. */
  private readonly stream = new Map<string, Encoding>();
  private readonly snapshot = new Map<string, Encoding>();
  /** Registered in this process, by topic and schema text (a Relation repeats itself often). */
  private readonly known = new Map<string, Encoding>();
  private readonly cursor = new JsonCursor();
  private readonly sink = new AvroSink();

  constructor(
    private readonly registry: SchemaRegistry,
    private readonly serverName: string,
    private readonly log: Logger,
  ) {}

  async streamLayout(topic: string, layout: TableLayout): Promise<void> {
    this.stream.set(topic, await this.prepare(topic, layout));
  }

  async snapshotLayout(topic: string, layout: TableLayout): Promise<void> {
    this.snapshot.set(topic, await this.prepare(topic, layout));
  }

  encode(topic: string, key: string | null, value: string | null): { key: Buffer | null; value: Buffer | null } {
    if (value === null) {
      const enc = this.stream.get(topic) ?? this.snapshot.get(topic) ?? this.missing(topic);
      return { key: this.encodeKey(enc, key), value: null };
    }
    const op = opOf(value);
    if (op !== undefined) {
      const bytes = this.encoding(topic, op).text.value(value, op);
      if (bytes !== null) return { key: this.encodeKey(this.encoding(topic, op), key), value: bytes };
    }
    const event = EventConverter.parse(value);
    const enc = this.encoding(topic, event.op);
    return { key: this.encodeKey(enc, key), value: enc.value.encode(enc.converter.value(event)) };
  }

  /** Snapshot reads use the snapshot's schemas. */
  private encoding(topic: string, op: string): Encoding {
    return (op === 'r' ? this.snapshot.get(topic) : undefined) ?? this.stream.get(topic) ?? this.missing(topic);
  }

  private encodeKey(enc: Encoding, key: string | null): Buffer | null {
    if (key === null || enc.key === null) return null;
    return enc.text.key(key) ?? enc.key.encode(enc.converter.key(key));
  }

  private missing(topic: string): never {
    throw new PipelineError('INTERNAL', `no Avro schema registered for ${topic} before its records`, {
      retriable: true,
    });
  }

  private async prepare(topic: string, layout: TableLayout): Promise<Encoding> {
    const schemas = tableSchemas(this.serverName, layout);
    const text = `${topic}|${JSON.stringify(schemas)}`;
    const cached = this.known.get(text);
    if (cached) return cached;
    const table = layout.table;
    const valueWriter = await this.registry.writer(
      topic,
      'value',
      schemas.value,
      describeValueChange(table, await this.latest(subjectFor(topic, 'value')), schemas),
    );
    const keyWriter = schemas.key
      ? await this.registry.writer(
          topic,
          'key',
          schemas.key,
          describeKeyChange(table, await this.latest(subjectFor(topic, 'key')), schemas.key),
        )
      : null;
    this.log.info(
      {
        topic,
        table: `${layout.schema}.${table}`,
        value_schema_id: valueWriter.id,
        key_schema_id: keyWriter?.id ?? null,
      },
      'avro schemas registered',
    );
    const enc: Encoding = {
      key: keyWriter,
      value: valueWriter,
      converter: new EventConverter(layout),
      text: new TextEncoder(layout, valueWriter.header, keyWriter?.header ?? null, this.cursor, this.sink),
      schemas,
    };
    this.known.set(text, enc);
    return enc;
  }

  /** The subject's latest schema (parsed), or null when it has none or the registry does not say. */
  private async latest(subject: string): Promise<unknown> {
    try {
      const meta = await this.registry.client.getLatestSchemaMetadata(subject);
      return meta.schema ? (JSON.parse(meta.schema) as unknown) : null;
    } catch {
      return null;
    }
  }
}
