import { PipelineError } from '../../core/errors.js';
import type { SchemaRegistry, SubjectRole } from './registry.js';
import type { AvroType } from './serdes.js';

/**
 * Encodes records of one registered Avro schema in the Confluent wire format (magic byte, the
 * schema's 4-byte id, the Avro binary), as the library's AvroSerializer does — with the schema
 * resolved once, so `encode` is synchronous and can sit on a stage's hot path.
 */

/** An Avro schema as JSON (a record, usually). */
export type AvroSchema = Record<string, unknown> | string | unknown[];

/** Where `encode` writes a record before copying it out (avsc's `encode` into a buffer given). */
let scratch = Buffer.allocUnsafe(1 << 16);

export class AvroWriter {
  private constructor(
    readonly subject: string,
    readonly id: number,
    readonly schema: AvroSchema,
    private readonly type: AvroType,
    /** The wire format's prefix of every record: magic byte 0 and the schema id (big-endian). */
    readonly header: Buffer,
  ) {}

  /** Called by SchemaRegistry.writer once the schema is registered as `id`. */
  static async create(
    registry: SchemaRegistry,
    topic: string,
    role: SubjectRole,
    id: number,
    schema: AvroSchema,
  ): Promise<AvroWriter> {
    const { avro, serde } = registry.serdes;
    const serdeType = role === 'key' ? serde.SerdeType.KEY : serde.SerdeType.VALUE;
    const serializer = new avro.AvroSerializer(registry.client, serdeType, { useSchemaId: id });
    const [type] = await serializer.toType({ schemaType: 'AVRO', schema: JSON.stringify(schema) });
    const header = serde.PrefixSchemaIdSerializer(topic, serdeType, Buffer.alloc(0), new serde.SchemaId('AVRO', id));
    return new AvroWriter(`${topic}-${role}`, id, schema, type, header);
  }

  /**
   * The record in the wire format. Throws INVALID_VALUE (not retriable) naming the first field
   * that does not fit the schema.
   */
  encode(value: unknown): Buffer {
    const h = this.header.length;
    let end: number;
    try {
      // avsc writes into the scratch after the header (one copy out, no zero-filled body buffer);
      // a record larger than the scratch returns how many bytes were missing (< 0): grow, again.
      end = this.type.encode(value, scratch, h);
      if (end < 0) {
        scratch = Buffer.allocUnsafe(Math.max(scratch.length * 2, scratch.length - end));
        end = this.type.encode(value, scratch, h);
      }
    } catch (err) {
      throw new PipelineError('INVALID_VALUE', `${this.subject}: ${this.mismatch(value) ?? (err as Error).message}`, {
        cause: err,
        details: { subject: this.subject, schemaId: this.id },
      });
    }
    const out = Buffer.allocUnsafe(end);
    this.header.copy(out, 0);
    scratch.copy(out, h, h, end);
    return out;
  }

  private mismatch(value: unknown): string | undefined {
    let found: string | undefined;
    this.type.isValid(value, {
      errorHook: (path: string[], got: unknown, type: AvroType) => {
        found ??= `field ${path.join('.') || '(record)'} holds ${JSON.stringify(got) ?? String(got)}, which is not ${type.typeName}`;
      },
    });
    return found;
  }
}
