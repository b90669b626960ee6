import { PipelineError } from '../../core/errors.js';
import { statusOf, subjectFor, type SchemaRegistry, type SubjectRole } from './registry.js';
import type { AvroType } from './serdes.js';

/**
 * Decodes the Avro records of one topic and role, whatever registered writer schema each names
 * (Confluent wire format: magic byte 0, the schema's 4-byte id, the Avro binary). Schemas are
 * fetched from the registry in `prepare` and kept, so `decode` is synchronous; a consumer calls
 * `prepare` on each batch before decoding it.
 */

export const AVRO_MAGIC = 0;

export class AvroReader {
  private readonly types = new Map<number, AvroType>();
  /** Ids the registry does not know (a record naming one is undecodable, not an outage). */
  private readonly unknown = new Set<number>();

  constructor(
    private readonly registry: SchemaRegistry,
    private readonly topic: string,
    private readonly role: SubjectRole,
  ) {}

  /** The writer schema id a payload names, or null when it is not in the wire format. */
  static schemaIdOf(payload: Uint8Array): number | null {
    if (payload.length < 5 || payload[0] !== AVRO_MAGIC) return null;
    return Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).readInt32BE(1);
  }

  /**
   * Fetches the writer schemas the payloads name that are not known yet. Throws
   * SERVICE_UNREACHABLE (retriable) when the registry does not answer; an id the registry does
   * not have is remembered and fails that record's `decode`.
   */
  async prepare(payloads: Iterable<Uint8Array | null>): Promise<void> {
    const missing = new Set<number>();
    for (const p of payloads) {
      if (!p) continue;
      const id = AvroReader.schemaIdOf(p);
      if (id !== null && !this.types.has(id) && !this.unknown.has(id)) missing.add(id);
    }
    for (const id of missing) await this.load(id);
  }

  /** The record as a plain object. Throws DECODE_FAILED (not retriable) for bytes it cannot read. */
  decode(payload: Uint8Array): unknown {
    const id = AvroReader.schemaIdOf(payload);
    if (id === null) throw this.failure('is not in the Avro wire format (no magic byte 0 and schema id)');
    const type = this.types.get(id);
    if (!type) {
      throw this.failure(
        this.unknown.has(id)
          ? `names schema id ${id}, which the registry does not have`
          : `names schema id ${id}, not prepared`,
      );
    }
    try {
      return type.fromBuffer(Buffer.from(payload.buffer, payload.byteOffset + 5, payload.byteLength - 5));
    } catch (err) {
      throw this.failure(`does not decode with schema id ${id}: ${(err as Error).message}`);
    }
  }

  private async load(id: number): Promise<void> {
    const { avro, serde } = this.registry.serdes;
    const subject = subjectFor(this.topic, this.role);
    try {
      const info = await this.registry.client.getBySubjectAndId(subject, id);
      const serdeType = this.role === 'key' ? serde.SerdeType.KEY : serde.SerdeType.VALUE;
      const deserializer = new avro.AvroDeserializer(this.registry.client, serdeType, {});
      const [type] = await deserializer.toType(info);
      this.types.set(id, type);
    } catch (err) {
      const status = statusOf(this.registry.serdes, err);
      if (status === 404) {
        this.unknown.add(id);
        return;
      }
      throw new PipelineError(
        'SERVICE_UNREACHABLE',
        `the schema registry did not give schema ${id}: ${(err as Error).message}`,
        {
          retriable: true,
          cause: err,
        },
      );
    }
  }

  private failure(what: string): PipelineError {
    return new PipelineError('DECODE_FAILED', `a record of ${this.topic} (${this.role}) ${what}`, {
      details: { topic: this.topic, role: this.role },
    });
  }
}
