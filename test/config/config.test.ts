import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { kafkaSecurity, parseEnv } from '../../src/config/load.js';
import { formatUnknownSetting, knownSettings, unknownSettings } from '../../src/config/unknown-settings.js';
import { envSchema } from '../../src/config/schema.js';
import { PipelineError } from '../../src/core/errors.js';

/**
 * The one config schema: every variable it reads is documented in .env.example (and nothing
 * else is), defaults apply when a variable is unset or empty, and a bad environment fails at
 * start naming every bad variable, what it was given and what it accepts.
 */

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

test('.env.example documents exactly the variables the schema reads', () => {
  const example = readFileSync(path.join(root, '.env.example'), 'utf8');
  const documented = [...example.matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1] as string);
  const read = Object.keys(envSchema.shape);
  assert.deepEqual(
    read.filter((k) => !documented.includes(k)),
    [],
    'read but not documented',
  );
  assert.deepEqual(
    documented.filter((k) => !read.includes(k)),
    [],
    'documented but not read',
  );
});

test('unset and empty variables take their defaults', () => {
  const env = parseEnv({ KAFKA_COMPRESSION: '', PROCESSOR_MAX_BATCH: '', BATCH_SIZE: '' });
  assert.equal(env.KAFKA_COMPRESSION, 'lz4');
  assert.equal(env.PROCESSOR_MAX_BATCH, 2000);
  assert.equal(env.BATCH_SIZE, undefined, 'unset: each sink its own (the warehouse by backend)');
  assert.equal(parseEnv({ KAFKA_COMPRESSION: 'zstd' }).KAFKA_COMPRESSION, 'zstd');
  assert.equal(parseEnv({}).DUCKDB_MEMORY_LIMIT, undefined);
  assert.equal(parseEnv({}).DUCKDB_THREADS, 1);
  assert.equal(parseEnv({ DUCKDB_MEMORY_LIMIT: '1.5 GiB' }).DUCKDB_MEMORY_LIMIT, '1.5 GiB');
});

test('a bad environment names every bad variable, the value given and what it accepts', () => {
  let caught: unknown;
  try {
    parseEnv({
      KAFKA_COMPRESSION: 'brotli',
      BATCH_SIZE: '0',
      CDC_SNAPSHOT_MODE: 'always',
      KAFKA_TOPIC_DLQ: 'dead letters',
      DUCKDB_MEMORY_LIMIT: 'lots',
      STACK_KAFKA_HEAP: '1.5g',
    });
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof PipelineError, 'throws a PipelineError');
  assert.equal(caught.code, 'CONFIG_INVALID');
  assert.equal(caught.retriable, false);
  const lines = caught.message.split('\n');
  for (const want of [
    'KAFKA_COMPRESSION="brotli": accepts none, gzip, snappy, lz4 or zstd',
    'BATCH_SIZE="0": accepts a whole number from 1 to 1000000',
    'CDC_SNAPSHOT_MODE="always": accepts initial, incremental or never',
    'KAFKA_TOPIC_DLQ="dead letters": accepts a Kafka topic name: letters, digits, . _ -',
    'DUCKDB_MEMORY_LIMIT="lots": accepts a size such as 512MB or 2GiB (KB, MB, GB, TB or KiB … TiB)',
    'STACK_KAFKA_HEAP="1.5g": accepts a JVM heap size in megabytes or gigabytes, such as 512m or 1g',
  ]) {
    assert.ok(
      lines.some((l) => l.trim() === want),
      `a line "${want}" in:\n${caught.message}`,
    );
  }
  assert.equal(lines.at(-1), 'See .env.example.');
});

test('Kafka security: a sasl protocol needs its credentials; the settings become librdkafka properties', () => {
  assert.throws(
    () => parseEnv({ KAFKA_SECURITY_PROTOCOL: 'sasl_ssl', KAFKA_SSL_CA_LOCATION: '/no/such/ca.pem' }),
    (err: Error) => {
      for (const want of [
        'KAFKA_SASL_USERNAME=(unset): is required when KAFKA_SECURITY_PROTOCOL is sasl_ssl',
        'KAFKA_SASL_PASSWORD=(unset): is required when KAFKA_SECURITY_PROTOCOL is sasl_ssl',
        'KAFKA_SSL_CA_LOCATION="/no/such/ca.pem": accepts the path of a readable PEM file (no such file)',
      ]) {
        assert.ok(
          err.message.split('\n').some((l) => l.trim() === want),
          `a line "${want}" in:\n${err.message}`,
        );
      }
      return true;
    },
  );
  assert.deepEqual(kafkaSecurity(parseEnv({})), {}, 'plaintext: no properties');
  const ca = path.join(root, 'package.json'); // any readable file stands in for the PEM here
  assert.deepEqual(
    kafkaSecurity(
      parseEnv({
        KAFKA_SECURITY_PROTOCOL: 'sasl_ssl',
        KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
        KAFKA_SASL_USERNAME: 'u',
        KAFKA_SASL_PASSWORD: 'p',
        KAFKA_SSL_CA_LOCATION: ca,
      }),
    ),
    {
      'security.protocol': 'sasl_ssl',
      'sasl.mechanisms': 'SCRAM-SHA-512',
      'sasl.username': 'u',
      'sasl.password': 'p',
      'ssl.ca.location': ca,
    },
  );
  assert.deepEqual(kafkaSecurity(parseEnv({ KAFKA_SECURITY_PROTOCOL: 'ssl' })), { 'security.protocol': 'ssl' });
  // A client certificate (mTLS): both halves, over TLS only.
  assert.deepEqual(
    kafkaSecurity(
      parseEnv({
        KAFKA_SECURITY_PROTOCOL: 'ssl',
        KAFKA_SSL_CERTIFICATE_LOCATION: ca,
        KAFKA_SSL_KEY_LOCATION: ca,
        KAFKA_SSL_KEY_PASSWORD: 'k',
      }),
    ),
    {
      'security.protocol': 'ssl',
      'ssl.certificate.location': ca,
      'ssl.key.location': ca,
      'ssl.key.password': 'k',
    },
  );
  const refusedWith = (env: Record<string, string>, line: string) =>
    assert.throws(
      () => parseEnv(env),
      (err: Error) => {
        assert.ok(
          err.message.split('\n').some((l) => l.trim() === line),
          `a line "${line}" in:\n${err.message}`,
        );
        return true;
      },
    );
  refusedWith(
    { KAFKA_SECURITY_PROTOCOL: 'ssl', KAFKA_SSL_CERTIFICATE_LOCATION: ca },
    'KAFKA_SSL_KEY_LOCATION=(unset): is required with the other half of the client certificate (KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION go together)',
  );
  refusedWith(
    { KAFKA_SSL_CERTIFICATE_LOCATION: ca, KAFKA_SSL_KEY_LOCATION: ca },
    `KAFKA_SSL_CERTIFICATE_LOCATION=${JSON.stringify(ca)}: applies only with KAFKA_SECURITY_PROTOCOL=ssl or sasl_ssl (it is plaintext)`,
  );
});

test('a variable that looks like a setting but is none is named, with the setting it likely meant', () => {
  const found = unknownSettings({
    KAFKA_BROKERS: 'k:9092',
    REDIS_UR: 'redis://x',
    STACK_PORT_OFSET: '3',
    KAFKA_TOPIC_WHATEVER_ELSE_ENTIRELY: 'x',
    BATCH_SIZE: '5',
    HOME: '/root',
    PATH: '/bin',
  });
  assert.deepEqual(found, [
    { name: 'KAFKA_BROKERS', suggestion: 'KAFKA_BOOTSTRAP_SERVERS' },
    { name: 'KAFKA_TOPIC_WHATEVER_ELSE_ENTIRELY', suggestion: undefined },
    { name: 'REDIS_UR', suggestion: 'REDIS_URL' },
    { name: 'STACK_PORT_OFSET', suggestion: 'STACK_PORT_OFFSET' },
  ]);
  assert.equal(
    formatUnknownSetting(found[0]!),
    'engage: warning: KAFKA_BROKERS is not a setting of engage and is ignored (did you mean KAFKA_BOOTSTRAP_SERVERS?); see .env.example',
  );
  assert.deepEqual(
    unknownSettings(Object.fromEntries(knownSettings().map((k) => [k, 'x']))),
    [],
    'every setting of the schema is known',
  );
});

test('a removed setting is named as removed, with what happens instead', () => {
  const [retired] = unknownSettings({ EXTERNAL_MAX_ATTEMPTS: '40' });
  assert.equal(retired?.name, 'EXTERNAL_MAX_ATTEMPTS');
  assert.match(
    formatUnknownSetting(retired!),
    /^engage: warning: EXTERNAL_MAX_ATTEMPTS is no longer a setting of engage and is ignored: a retriable failure .* is retried for as long as it lasts/,
  );
  const [eos] = unknownSettings({ ENABLE_EXACTLY_ONCE: 'false' });
  assert.match(
    formatUnknownSetting(eos!),
    /ENABLE_EXACTLY_ONCE is no longer a setting of engage and is ignored: the pipeline is always exactly once/,
  );
});
