import { PipelineError } from '../../core/errors.js';
import { AvroReader } from './avro-reader.js';
import { AvroWriter, type AvroSchema } from './avro-writer.js';
import { loadSerdes, type Serdes } from './serdes.js';
import type { Client } from '@confluentinc/schemaregistry/dist/schemaregistry-client.js';

/**
 * The pipeline's view of a Confluent-compatible schema registry (Confluent, Apicurio's ccompat API,
 * Redpanda): subjects by TopicNameStrategy (`<topic>-key`, `<topic>-value`), Avro schemas registered
 * under the subject's compatibility rule, and readers that resolve any writer schema by its id.
 * Generic: it never names a stage; each stage brings its own schemas.
 */

export interface RegistryOptions {
  /** The registry's base URL (for Apicurio, its `/apis/ccompat/v7`); `mock://…` for an in-process registry. */
  url: string;
  /** `user:password` for HTTP basic authentication. */
  basicAuth?: string;
  /** The rule set on a subject that has none of its own when the pipeline first registers under it. */
  compatibility: string;
}

export type SubjectRole = 'key' | 'value';

export function subjectFor(topic: string, role: SubjectRole): string {
  return `${topic}-${role}`;
}

export class SchemaRegistry {
  private readonly ruled = new Set<string>();

  private constructor(
    readonly serdes: Serdes,
    readonly client: Client,
    private readonly o: RegistryOptions,
  ) {}

  static async connect(o: RegistryOptions): Promise<SchemaRegistry> {
    const serdes = await loadSerdes();
    const client = serdes.client.SchemaRegistryClient.newClient({
      baseURLs: [o.url],
      ...(o.basicAuth ? { basicAuthCredentials: { credentialsSource: 'USER_INFO', userInfo: o.basicAuth } } : {}),
      maxRetries: 2,
      retriesWaitMs: 200,
      retriesMaxWaitMs: 2000,
    });
    return new SchemaRegistry(serdes, client, o);
  }

  /**
   * Registers `schema` under the topic's subject (an identical schema already there keeps its id)
   * and returns a writer for it. Throws SCHEMA_INCOMPATIBLE (fatal) when the subject's rule refuses
   * it — `describe` names the change in that message — and SERVICE_UNREACHABLE (retriable) when
   * the registry cannot be reached.
   */
  async writer(topic: string, role: SubjectRole, schema: AvroSchema, describe = ''): Promise<AvroWriter> {
    const subject = subjectFor(topic, role);
    await this.ensureRule(subject);
    let id: number;
    try {
      id = await this.client.register(subject, { schemaType: 'AVRO', schema: JSON.stringify(schema) }, false);
    } catch (err) {
      throw await this.registrationError(subject, err, describe);
    }
    return AvroWriter.create(this, topic, role, id, schema);
  }

  /** A reader of the topic's records of `role`, whatever writer schema each names. */
  reader(topic: string, role: SubjectRole): AvroReader {
    return new AvroReader(this, topic, role);
  }

  /** The subject's compatibility rule: its own, else the registry's global one. */
  async compatibilityOf(subject: string): Promise<string> {
    try {
      return await this.client.getCompatibility(subject);
    } catch {
      try {
        return await this.client.getDefaultCompatibility();
      } catch {
        return 'unknown';
      }
    }
  }

  /** Sets the configured rule on a subject that has none of its own (once per subject and process). */
  private async ensureRule(subject: string): Promise<void> {
    if (this.ruled.has(subject)) return;
    let own: string | undefined;
    try {
      own = await this.client.getCompatibility(subject);
    } catch (err) {
      if (statusOf(this.serdes, err) === undefined) throw unreachable(this.o.url, err);
    }
    if (own === undefined) {
      try {
        await this.client.updateCompatibility(subject, this.o.compatibility as never);
      } catch (err) {
        throw unreachable(this.o.url, err);
      }
    }
    this.ruled.add(subject);
  }

  private async registrationError(subject: string, err: unknown, describe: string): Promise<PipelineError> {
    const status = statusOf(this.serdes, err);
    if (status === 409) {
      const rule = await this.compatibilityOf(subject);
      const what = describe ? `${describe}: ` : '';
      return new PipelineError(
        'SCHEMA_INCOMPATIBLE',
        `${what}the new schema of ${subject} is refused by the subject's ${rule} compatibility rule (registry: ${(err as Error).message}). Revert the change, or relax the rule (PUT /config/${subject}) if every reader can take it.`,
        { details: { subject, rule } },
      );
    }
    if (status !== undefined && status < 500 && status !== 429)
      return new PipelineError(
        'SERVICE_MISCONFIGURED',
        `the registry refused ${subject}'s schema: ${(err as Error).message}`,
        {
          cause: err,
          details: { subject, status },
        },
      );
    return unreachable(this.o.url, err);
  }
}

/** The HTTP status of a registry error, or undefined when no response came. */
export function statusOf(serdes: Serdes, err: unknown): number | undefined {
  return err instanceof serdes.restError.RestError && err.status > 0 ? err.status : undefined;
}

function unreachable(url: string, err: unknown): PipelineError {
  const safe = url.replace(/:\/\/[^@/]*@/, '://');
  return new PipelineError(
    'SERVICE_UNREACHABLE',
    `the schema registry at ${safe} did not answer: ${(err as Error).message}`,
    {
      retriable: true,
      cause: err,
    },
  );
}
