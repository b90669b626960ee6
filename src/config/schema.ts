import { existsSync } from 'node:fs';
import { z } from 'zod';

/**
 * The one schema for every environment variable the pipeline reads. `loadConfig` validates the
 * whole environment at start; every component takes the typed `Config` and never reads
 * `process.env` itself. Each entry documents itself in `.env.example` (keep the two in step).
 *
 * The three service URLs are optional: when unset, `engage stack` starts a private service and
 * every command finds it through the stack's state file (see src/config/stack-state.ts).
 */

const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce
    .number({ message: `accepts a whole number from ${min} to ${max}` })
    .int({ message: `accepts a whole number from ${min} to ${max}` })
    .min(min, { message: `accepts a whole number from ${min} to ${max}` })
    .max(max, { message: `accepts a whole number from ${min} to ${max}` });

const url = (protocols: string[]) =>
  z.string().refine(
    (v) => {
      try {
        return protocols.includes(new URL(v).protocol);
      } catch {
        return false;
      }
    },
    { message: `accepts a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}` },
  );

const topic = z
  .string()
  .regex(/^[A-Za-z0-9._-]{1,249}$/, { message: 'accepts a Kafka topic name: letters, digits, . _ -' });

const identifier = z
  .string()
  .regex(/^[a-z_][a-z0-9_]{0,62}$/, { message: 'accepts a lower-case SQL identifier (a-z, 0-9, _)' });

/** The codecs librdkafka's `compression.type` takes, and the one every producer uses by default. */
export const KAFKA_COMPRESSIONS = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;
export type KafkaCompression = (typeof KAFKA_COMPRESSIONS)[number];
export const DEFAULT_KAFKA_COMPRESSION: KafkaCompression = 'lz4';
export const KAFKA_SECURITY_PROTOCOLS = ['plaintext', 'ssl', 'sasl_plaintext', 'sasl_ssl'] as const;
export const KAFKA_SASL_MECHANISMS = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] as const;
export const SCHEMA_COMPATIBILITIES = [
  'BACKWARD',
  'BACKWARD_TRANSITIVE',
  'FORWARD',
  'FORWARD_TRANSITIVE',
  'FULL',
  'FULL_TRANSITIVE',
  'NONE',
] as const;

const pemFile = z
  .string()
  .refine((f) => existsSync(f), { message: 'accepts the path of a readable PEM file (no such file)' })
  .optional();

export const envSchema = z
  .object({
    DATABASE_URL: url(['postgres:', 'postgresql:']).optional(),
    KAFKA_BOOTSTRAP_SERVERS: z
      .string()
      .regex(/^[^,\s:]+:\d+(,[^,\s:]+:\d+)*$/, { message: 'accepts host:port[,host:port…]' })
      .optional(),
    KAFKA_TOPIC_ENGAGEMENT_EVENTS: topic.default('engagement-events'),
    KAFKA_TOPIC_CONTENT: topic.default('engagement-content'),
    KAFKA_TOPIC_ENRICHED: topic.default('engagement-enriched'),
    KAFKA_TOPIC_DLQ: topic.default('engagement-dlq'),
    KAFKA_TOPIC_CDC_POSITION: topic.default('engagement-cdc-position'),
    KAFKA_TOPIC_PARTITIONS: int(1, 1000).default(6),
    /** Replication factor of the topics the pipeline creates; unset: min(3, the brokers the cluster
     *  lists). Their `min.insync.replicas` is a majority but never all (2 of 3; src/kafka/admin.ts). */
    KAFKA_REPLICATION_FACTOR: int(1, 16).optional(),
    KAFKA_CLIENT_ID: z.string().min(1).default('engagement-pipeline'),
    /**
     * The largest Kafka record the pipeline writes, in bytes: librdkafka's `message.max.bytes` on every
     * client, the topics' `max.message.bytes` (plus framing headroom) when the pipeline creates them,
     * the consumers' fetch sizes, the CDC's budget per change event (oversized values are replaced by
     * a marker, docs/cdc.md) and the DLQ's per-entry cap. Existing topics keep their own limit.
     */
    KAFKA_MESSAGE_MAX_BYTES: int(131072, 33554432).default(1000000),
    KAFKA_COMPRESSION: z
      .enum(KAFKA_COMPRESSIONS, { message: 'accepts none, gzip, snappy, lz4 or zstd' })
      .default(DEFAULT_KAFKA_COMPRESSION),
    /** How every client talks to the brokers (librdkafka's security.protocol): TLS and/or SASL for a managed Kafka. */
    KAFKA_SECURITY_PROTOCOL: z
      .enum(KAFKA_SECURITY_PROTOCOLS, { message: 'accepts plaintext, ssl, sasl_plaintext or sasl_ssl' })
      .default('plaintext'),
    KAFKA_SASL_MECHANISM: z
      .enum(KAFKA_SASL_MECHANISMS, { message: 'accepts PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512' })
      .default('PLAIN'),
    /** Required with a sasl_* protocol. */
    KAFKA_SASL_USERNAME: z.string().optional(),
    KAFKA_SASL_PASSWORD: z.string().optional(),
    /** A PEM file of the CA certificates that sign the brokers' (ssl, sasl_ssl); unset: the system's. */
    KAFKA_SSL_CA_LOCATION: pemFile,
    /** A client certificate and its key, PEM (ssl, sasl_ssl), for brokers that authenticate clients by certificate (mTLS). */
    KAFKA_SSL_CERTIFICATE_LOCATION: pemFile,
    KAFKA_SSL_KEY_LOCATION: pemFile,
    /** The key's passphrase, when KAFKA_SSL_KEY_LOCATION is encrypted. */
    KAFKA_SSL_KEY_PASSWORD: z.string().optional(),
    /** How the data topics (events, content, enriched) carry their records: json (Debezium's JSON
     *  converter without schemas) or avro (Debezium's Avro converter: Confluent wire format, schemas in
     *  the registry at SCHEMA_REGISTRY_URL; docs/schemas.md). Internal topics (position, DLQ) stay JSON. */
    KAFKA_VALUE_FORMAT: z.enum(['json', 'avro'], { message: 'accepts json or avro' }).default('json'),
    /** A Confluent-compatible schema registry (Confluent, Apicurio's /apis/ccompat/v7, Redpanda); unset: the private stack's. */
    SCHEMA_REGISTRY_URL: url(['http:', 'https:']).optional(),
    /** `user:password` for a registry that asks for HTTP basic authentication. */
    SCHEMA_REGISTRY_BASIC_AUTH: z
      .string()
      .regex(/^[^:]+:.+$/, { message: 'accepts user:password' })
      .optional(),
    /** The compatibility rule set on each subject the pipeline registers (a subject that has its own keeps it). */
    SCHEMA_COMPATIBILITY: z
      .enum(SCHEMA_COMPATIBILITIES, { message: `accepts one of ${SCHEMA_COMPATIBILITIES.join(', ')}` })
      .default('BACKWARD'),
    /** The columns holding personal data, `table.column[,…]`, replaced by a keyed pseudonym from the
     *  first topic on (docs/security.md); `none` turns the protection off. */
    PII_FIELDS: z
      .string()
      .regex(/^(none|[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*(,[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*)*)$/, {
        message: 'accepts table.column[,table.column…] (lower-case SQL identifiers) or none',
      })
      .default('engagement_events.user_id'),
    /** The pseudonym keys, `keyid:secret[,keyid:secret…]`, the first the current one (a secret of at least
     *  32 characters; key ids of letters and digits). Unset with the private stack: a key generated in its folder. */
    PII_KEYS: z
      .string()
      .regex(/^[A-Za-z0-9]{1,16}:[^,\s]{32,}(,[A-Za-z0-9]{1,16}:[^,\s]{32,})*$/, {
        message:
          'accepts keyid:secret[,keyid:secret…] with key ids of 1-16 letters or digits and secrets of at least 32 characters',
      })
      .optional(),
    REDIS_URL: url(['redis:', 'rediss:']).optional(),
    REDIS_AGGREGATION_WINDOW_MINUTES: int(1, 1440).default(10),
    REDIS_KEY_PREFIX: z
      .string()
      .regex(/^[A-Za-z0-9:_-]{1,64}$/, { message: 'accepts 1-64 letters, digits, : _ -' })
      .default('engage:'),
    REDIS_RECENT_EVENTS: int(1, 10000).default(100),
    BIGQUERY_PROJECT_ID: z.string().min(1).optional(),
    BIGQUERY_DATASET_ID: z
      .string()
      .regex(/^[A-Za-z0-9_]{1,1024}$/, { message: 'accepts letters, digits and _' })
      .default('engagement_analytics'),
    BIGQUERY_API_ENDPOINT: url(['http:', 'https:']).optional(),
    BIGQUERY_LOCATION: z.string().default('US'),
    /** The Storage Write API's gRPC endpoint (http: plaintext, for a local fake; https: TLS); default Google's. */
    BIGQUERY_STORAGE_API_ENDPOINT: url(['http:', 'https:']).optional(),
    /** How the BigQuery warehouse writes: the Storage Write API (default) or one query job per batch (the former backend). */
    BIGQUERY_WRITE_API: z.enum(['storage', 'query'], { message: 'accepts storage or query' }).default('storage'),
    GOOGLE_APPLICATION_CREDENTIALS: z.string().optional(),
    DUCKDB_PATH: z.string().min(1).default('data/warehouse.duckdb'),
    DUCKDB_CHECKPOINT_MB: int(1, 65536).default(256),
    DUCKDB_THREADS: int(1, 256).default(1),
    DUCKDB_MEMORY_LIMIT: z
      .string()
      .regex(/^\d+(\.\d+)? ?(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$/i, {
        message: 'accepts a size such as 512MB or 2GiB (KB, MB, GB, TB or KiB … TiB)',
      })
      .optional(),
    EXTERNAL_API_URL: url(['http:', 'https:']).optional(),
    EXTERNAL_API_AUTH_HEADER: z.string().optional(),
    EXTERNAL_API_TIMEOUT_MS: int(100, 300000).default(10000),
    EXTERNAL_PSEUDONYMIZE_KEY: z.string().min(16, { message: 'accepts a key of at least 16 characters' }).optional(),
    EXTERNAL_RECEIVER_PORT: int(1, 65535).default(8090),
    EXTERNAL_CIRCUIT_FAILURES: int(1, 1000).default(5),
    EXTERNAL_CIRCUIT_COOLDOWN_MS: int(100, 600000).default(5000),
    FILE_SINK_DIR: z.string().min(1).optional(),
    FILE_SINK_MAX_BYTES: int(1024, 2 ** 40).default(64 * 1024 * 1024),
    API_PORT: int(1, 65535).default(8080),
    API_HOST: z.string().default('127.0.0.1'),
    API_TOKEN: z.string().min(8, { message: 'accepts a token of at least 8 characters' }).optional(),
    API_EXPECTED_COMPONENTS: z
      .string()
      .regex(/^[a-z0-9-]+(,[a-z0-9-]+)*$/, {
        message: 'accepts a comma-separated list of component names, e.g. cdc,processor,sink-redis',
      })
      // Unset: the CDC, the processor and every sink `engage run` runs by default (src/sinks/registry.ts).
      .optional(),
    /** A component's own health endpoint for an orchestrator's probes (/health/live, /health/ready,
     *  /health; src/runtime/health-endpoint.ts): every long-running command serves it when set.
     *  `engage run` does not pass it to its components, which would share the port. */
    HEALTH_PORT: int(1, 65535).optional(),
    /** The address the health endpoint binds (0.0.0.0 in a container: the kubelet probes the pod's IP). */
    HEALTH_HOST: z.string().default('127.0.0.1'),
    /** Records per batch and partition of the warehouse (unset: 20,000 for DuckDB, 100 for BigQuery), and
     *  of a sink that declares no batching of its own (unset: DEFAULT_BATCH_SIZE). */
    BATCH_SIZE: int(1, 1000000).optional(),
    PROCESSING_INTERVAL_SECONDS: z.coerce
      .number({ message: 'accepts a number of seconds above 0' })
      .positive({ message: 'accepts a number of seconds above 0' })
      .default(1),
    WAREHOUSE_FLUSH_SECONDS: z.coerce
      .number({ message: 'accepts a number of seconds from 0.1 to 30' })
      .min(0.1, { message: 'accepts a number of seconds from 0.1 to 30' })
      .max(30, { message: 'accepts a number of seconds from 0.1 to 30' })
      // Unset: 1 s for DuckDB (an upper bound: its batches are paced by what commits cost), 30 s for BigQuery.
      .optional(),
    CDC_SLOT_NAME: identifier.default('engage_cdc'),
    CDC_PUBLICATION_NAME: identifier.default('engage_pub'),
    /** initial: one exported-snapshot read in one Kafka transaction; incremental: chunked by primary
     *  key between WAL watermarks, interleaved with streaming, resumable (docs/cdc.md); never. */
    CDC_SNAPSHOT_MODE: z
      .enum(['initial', 'incremental', 'never'], { message: 'accepts initial, incremental or never' })
      .default('initial'),
    /** Rows one incremental-snapshot chunk reads (one SELECT … ORDER BY primary key LIMIT n). */
    CDC_SNAPSHOT_CHUNK_ROWS: int(1, 1_000_000).default(10_000),
    /** The incremental snapshot's read rate bound in rows/s (0: unbounded). */
    CDC_SNAPSHOT_MAX_ROWS_PER_SECOND: int(0, 100_000_000).default(0),
    /** Where the incremental snapshot makes the pseudonyms of PII_FIELDS columns: postgres (in the
     *  chunk's COPY; the reading session holds the key, docs/security.md) or cdc (the key never
     *  leaves the CDC; more of its CPU per row). */
    CDC_SNAPSHOT_PSEUDONYMS: z.enum(['postgres', 'cdc'], { message: 'accepts postgres or cdc' }).default('postgres'),
    CDC_SERVER_NAME: z.string().min(1).default('engage'),
    CDC_HEARTBEAT_SECONDS: z.coerce.number().positive().default(10),
    CDC_WAL_WARN_BYTES: int(0).default(1024 * 1024 * 1024),
    CDC_MAX_BATCH_ROWS: int(1, 10000000).default(10000),
    CDC_COMMIT_INTERVAL_MS: int(1, 60000).default(100),
    /** A PostgreSQL transaction with more row changes than this is written across several Kafka
     *  transactions of about this many (consumers see it in parts; docs/cdc.md "Large transactions"). */
    CDC_SPLIT_TRANSACTION_ROWS: int(1, 100_000_000).default(100_000),
    CDC_SLOT_WAIT_SECONDS: int(0, 86400).default(30),
    CONTENT_WAIT_MS: int(0, 600000).default(5000),
    PROCESSOR_MAX_BATCH: int(1, 50000).default(2000),
    PROCESSOR_CONCURRENCY: int(1, 64).default(3),
    /** Both outlast a broker's loss (its leader election, nominally 13 s on the stack's cluster,
     *  12–18.5 s measured under load, and the coordinators' move), so a transaction open across it
     *  commits and the group keeps its members; a SIGKILLed instance's partitions and open
     *  transaction wait as long (docs/operations.md, "What the loss of a broker does"). */
    PROCESSOR_TRANSACTION_TIMEOUT_MS: int(1000, 900000).default(30000),
    PROCESSOR_SESSION_TIMEOUT_MS: int(6000, 300000).default(30000),
    /** A consumer (processor, sinks) holding no partition while its group leaves partitions with lag
     *  unheld, or with a rebalance stuck, reports itself unhealthy after half this and exits after it. */
    KAFKA_REJOIN_TIMEOUT_SECONDS: int(10, 3600).default(60),
    /** V8 young-generation semi-space (MB) the processor is started with (by the supervisor, and by
     *  bin/engage.mjs for `engage process`: keep bin/node-flags.mjs's default equal); 0 = V8's default. */
    PROCESSOR_SEMI_SPACE_MB: int(0, 1024).default(64),
    /** The same for each sink process (`engage sink …`). */
    SINK_SEMI_SPACE_MB: int(0, 1024).default(64),
    STACK_PORT_OFFSET: int(0, 5000).default(0),
    STACK_DIR: z.string().min(1).default('.stack'),
    /** Nodes of the private Kafka (`engage stack up --kafka-brokers N`); unset: what the stack's
     *  storage was formatted for, else 1. */
    STACK_KAFKA_BROKERS: int(1, 5).optional(),
    /** The private Kafka broker's JVM heap (-Xms and -Xmx; each node's), e.g. 512m or 1g. */
    STACK_KAFKA_HEAP: z
      .string()
      .regex(/^[1-9]\d*[mMgG]$/, { message: 'accepts a JVM heap size in megabytes or gigabytes, such as 512m or 1g' })
      .default('1g'),
    /** Set by `engage run` on the components it starts: a component exits when that process is gone. */
    SUPERVISOR_PID: int(1).optional(),
    LOG_LEVEL: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
        message: 'accepts fatal, error, warn, info, debug, trace or silent',
      })
      .default('info'),
  })
  .superRefine((env, ctx) => {
    const protocol = env.KAFKA_SECURITY_PROTOCOL;
    if (protocol.startsWith('sasl_')) {
      for (const name of ['KAFKA_SASL_USERNAME', 'KAFKA_SASL_PASSWORD'] as const) {
        if (!env[name])
          ctx.addIssue({
            code: 'custom',
            path: [name],
            message: `is required when KAFKA_SECURITY_PROTOCOL is ${protocol}`,
          });
      }
    }
    const cert = env.KAFKA_SSL_CERTIFICATE_LOCATION;
    const key = env.KAFKA_SSL_KEY_LOCATION;
    if ((cert === undefined) !== (key === undefined)) {
      const missing = cert === undefined ? 'KAFKA_SSL_CERTIFICATE_LOCATION' : 'KAFKA_SSL_KEY_LOCATION';
      ctx.addIssue({
        code: 'custom',
        path: [missing],
        message:
          'is required with the other half of the client certificate (KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION go together)',
      });
    }
    if (
      (cert !== undefined || key !== undefined || env.KAFKA_SSL_KEY_PASSWORD !== undefined) &&
      !protocol.endsWith('ssl')
    ) {
      const name =
        cert !== undefined
          ? 'KAFKA_SSL_CERTIFICATE_LOCATION'
          : key !== undefined
            ? 'KAFKA_SSL_KEY_LOCATION'
            : 'KAFKA_SSL_KEY_PASSWORD';
      ctx.addIssue({
        code: 'custom',
        path: [name],
        message: `applies only with KAFKA_SECURITY_PROTOCOL=ssl or sasl_ssl (it is ${protocol})`,
      });
    }
  });

export type Env = z.infer<typeof envSchema>;
