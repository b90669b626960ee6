import { existsSync } from 'node:fs';
import path from 'node:path';
import dotenv from 'dotenv';
import { PipelineError } from '../core/errors.js';
import { parsePiiFields, parsePiiKeys, privatePiiKeys, type PiiField, type PiiKey } from './pii-keys.js';
import { envSchema, type Env } from './schema.js';
import { readStackState } from './stack-state.js';
import { formatUnknownSetting, unknownSettings } from './unknown-settings.js';

/** The validated configuration, with the service URLs resolved (explicit or private stack). */
export interface Config extends Env {
  databaseUrl: string;
  kafkaBrokers: string[];
  redisUrl: string;
  /** The Confluent-compatible schema registry (SCHEMA_REGISTRY_URL, else the private stack's). */
  schemaRegistryUrl: string;
  /** The pseudonym keys (PII_KEYS, else the private stack's development key; empty: none available). */
  piiKeys: PiiKey[];
  /** The columns PII_FIELDS tags as personal data (empty: protection off). */
  piiFields: PiiField[];
  /** librdkafka security properties every Kafka client is created with (empty for plaintext). */
  kafkaSecurity: Readonly<Record<string, string>>;
  /** Where each service URL came from: the environment, or the project's private stack. */
  origins: {
    postgres: 'env' | 'stack';
    kafka: 'env' | 'stack';
    redis: 'env' | 'stack';
    registry: 'env' | 'stack';
    piiKeys: 'env' | 'stack' | 'none';
  };
  stackDir: string;
  ports: PrivatePorts;
  /** Which warehouse backend the sink uses: BigQuery when a project is configured. */
  warehouse: 'duckdb' | 'bigquery';
}

/** Validates `source` (default: process.env plus `.env` when present) and throws CONFIG_INVALID
 *  naming every bad variable and what it accepts. Never reads the environment after start. */
export function parseEnv(source: NodeJS.ProcessEnv): Env {
  const cleaned = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined && v !== ''));
  const result = envSchema.safeParse(cleaned);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const name = issue.path.join('.');
    return `  ${name}=${shownValue(name, source[name])}: ${issue.message}`;
  });
  throw new PipelineError('CONFIG_INVALID', `Invalid configuration:\n${lines.join('\n')}\nSee .env.example.`);
}

/** Variables whose values are secrets: an error names them but never shows their value. */
const SECRET_NAME = /PASSWORD|TOKEN|SECRET|KEYS?$|_AUTH|CREDENTIALS/;

/**
 * A value as a configuration error may show it: a secret's only as its length, a URL's without
 * its password (`postgresql://user:***@host/db`), anything else as given.
 */
export function shownValue(name: string, value: string | undefined): string {
  if (value === undefined) return '(unset)';
  if (SECRET_NAME.test(name)) return `(hidden, ${value.length} characters)`;
  const withoutPassword = value.replace(/:\/\/([^:@/\s]*):[^@\s]*@/g, '://$1:***@');
  return JSON.stringify(withoutPassword);
}

export function loadDotenv(cwd = process.cwd()): void {
  const file = path.join(cwd, '.env');
  if (existsSync(file)) dotenv.config({ path: file, quiet: true });
}

export interface PrivatePorts {
  postgres: number;
  kafka: number;
  kafkaController: number;
  /** The private broker's SASL_PLAINTEXT listener (PLAIN, PRIVATE_SASL_USER), for trying client authentication. */
  kafkaSasl: number;
  /** The private broker's SSL listener (its certificate: `<STACK_DIR>/kafka/tls/ca.pem`). */
  kafkaTls: number;
  /** The private broker's SASL_SSL listener: both of the above (PLAIN or SCRAM over TLS, as managed brokers ask). */
  kafkaSaslTls: number;
  redis: number;
  /** The private schema registry (Apicurio, Confluent-compatible API). */
  registry: number;
}

/**
 * The private stack's ports, shifted by STACK_PORT_OFFSET (so two stacks can coexist). They sit
 * below Linux's ephemeral range (32768–60999): a port inside it can be taken, while its server is
 * down, by a client's own outgoing socket (a reconnecting client can even connect to itself), and
 * the restarted server then fails to bind.
 */
export function privatePorts(offset = 0): PrivatePorts {
  return {
    postgres: 25432 + offset,
    kafka: 29092 + offset,
    kafkaController: 29093 + offset,
    kafkaSasl: 29094 + offset,
    kafkaTls: 29095 + offset,
    kafkaSaslTls: 29096 + offset,
    redis: 26379 + offset,
    registry: 28081 + offset,
  };
}
export const PRIVATE_DATABASE = 'engagement_db';
/**
 * The one user of the private broker's SASL listeners, for PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512
 * alike (a local stack's fixed credentials, like PostgreSQL's trust auth).
 */
export const PRIVATE_SASL_USER = { username: 'engage', password: 'engage-secret' } as const;

/** The path of Apicurio's Confluent-compatible API under the private registry's address. */
export const PRIVATE_REGISTRY_PATH = '/apis/ccompat/v7';

export function privateUrls(offset = 0): {
  databaseUrl: string;
  kafka: string;
  redisUrl: string;
  schemaRegistryUrl: string;
} {
  const ports = privatePorts(offset);
  return {
    databaseUrl: `postgresql://postgres@127.0.0.1:${ports.postgres}/${PRIVATE_DATABASE}`,
    kafka: `127.0.0.1:${ports.kafka}`,
    redisUrl: `redis://127.0.0.1:${ports.redis}`,
    schemaRegistryUrl: `http://127.0.0.1:${ports.registry}${PRIVATE_REGISTRY_PATH}`,
  };
}

let warnedUnknown = false;

/** Prints, once per process, the variables that look like settings but are none (unknown-settings.ts). */
function warnUnknownSettingsOnce(source: NodeJS.ProcessEnv): void {
  if (warnedUnknown) return;
  warnedUnknown = true;
  for (const u of unknownSettings(source)) process.stderr.write(`${formatUnknownSetting(u)}\n`);
}

/** Loads and validates the configuration. Service URLs left unset resolve to the private stack
 *  (recorded in `<STACK_DIR>/state.json` by `engage stack up`, else its fixed private ports). */
export function loadConfig(source: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Config {
  if (source === process.env) {
    loadDotenv(cwd);
    warnUnknownSettingsOnce(source);
  }
  const env = parseEnv(source);
  const stackDir = path.resolve(cwd, env.STACK_DIR);
  const state = readStackState(stackDir);
  const priv = privateUrls(env.STACK_PORT_OFFSET);
  const databaseUrl = env.DATABASE_URL ?? state?.services.postgres?.url ?? priv.databaseUrl;
  const kafka = env.KAFKA_BOOTSTRAP_SERVERS ?? state?.services.kafka?.url ?? priv.kafka;
  const redisUrl = env.REDIS_URL ?? state?.services.redis?.url ?? priv.redisUrl;
  const schemaRegistryUrl = env.SCHEMA_REGISTRY_URL ?? state?.services.registry?.url ?? priv.schemaRegistryUrl;
  const piiKeys = env.PII_KEYS ? parsePiiKeys(env.PII_KEYS) : env.DATABASE_URL ? [] : privatePiiKeys(stackDir);
  return {
    ...env,
    databaseUrl,
    kafkaBrokers: kafka.split(','),
    redisUrl,
    schemaRegistryUrl,
    piiKeys,
    piiFields: parsePiiFields(env.PII_FIELDS),
    kafkaSecurity: kafkaSecurity(env),
    origins: {
      postgres: env.DATABASE_URL ? 'env' : 'stack',
      kafka: env.KAFKA_BOOTSTRAP_SERVERS ? 'env' : 'stack',
      redis: env.REDIS_URL ? 'env' : 'stack',
      registry: env.SCHEMA_REGISTRY_URL ? 'env' : 'stack',
      piiKeys: env.PII_KEYS ? 'env' : piiKeys.length > 0 ? 'stack' : 'none',
    },
    stackDir,
    ports: privatePorts(env.STACK_PORT_OFFSET),
    warehouse: env.BIGQUERY_PROJECT_ID ? 'bigquery' : 'duckdb',
  };
}

/** KAFKA_SECURITY_PROTOCOL and its companions as librdkafka properties (parseEnv checked them). */
export function kafkaSecurity(env: Env): Record<string, string> {
  if (env.KAFKA_SECURITY_PROTOCOL === 'plaintext') return {};
  const props: Record<string, string> = { 'security.protocol': env.KAFKA_SECURITY_PROTOCOL };
  if (env.KAFKA_SECURITY_PROTOCOL.startsWith('sasl_')) {
    props['sasl.mechanisms'] = env.KAFKA_SASL_MECHANISM;
    props['sasl.username'] = env.KAFKA_SASL_USERNAME ?? '';
    props['sasl.password'] = env.KAFKA_SASL_PASSWORD ?? '';
  }
  if (env.KAFKA_SECURITY_PROTOCOL === 'sasl_plaintext') return props;
  if (env.KAFKA_SSL_CA_LOCATION) props['ssl.ca.location'] = env.KAFKA_SSL_CA_LOCATION;
  if (env.KAFKA_SSL_CERTIFICATE_LOCATION && env.KAFKA_SSL_KEY_LOCATION) {
    props['ssl.certificate.location'] = env.KAFKA_SSL_CERTIFICATE_LOCATION;
    props['ssl.key.location'] = env.KAFKA_SSL_KEY_LOCATION;
    if (env.KAFKA_SSL_KEY_PASSWORD) props['ssl.key.password'] = env.KAFKA_SSL_KEY_PASSWORD;
  }
  return props;
}
