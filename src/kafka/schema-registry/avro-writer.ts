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

export class AvroWriter {
  private readonly header: Buffer;

  private constructor(
    readonly subject: string,
    readonly id: number,
    readonly schema: AvroSchema,
    private readonly type: AvroType,
    header: Buffer,
  ) {
    this.header = header;
  }

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
    let body: Buffer;
    try {
      body = this.type.toBuffer(value);
    } catch (err) {
      throw new PipelineError('INVALID_VALUE', `${this.subject}: ${this.mismatch(value) ?? (err as Error).message}`, {
        cause: err,
        details: { subject: this.subject, schemaId: this.id },
      });
    }
    const out = Buffer.allocUnsafe(this.header.length + body.length);
    this.header.copy(out, 0);
    body.copy(out, this.header.length);
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
