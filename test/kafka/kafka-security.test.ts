import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { loadConfig, PRIVATE_SASL_USER } from '../../src/config/load.js';
import { PipelineError } from '../../src/core/errors.js';
import { createLogger } from '../../src/core/logger.js';
import type { ContentRow, EnrichedEvent } from '../../src/core/types.js';
import { ensureTopics } from '../../src/kafka/admin.js';
import { startProcessor } from '../../src/processor/processor.js';
import { startSinkRunner } from '../../src/runtime/sink-runner.js';
import { scramReady } from '../../src/stack/kafka.js';
import { brokerCaPem, stackClientIdentity } from '../../src/stack/kafka-tls.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { createMemoryStore, memorySinkFactory } from '../helpers/memory-sink.js';
import { readDlq } from '../helpers/sink-harness.js';
import { waitFor } from '../helpers/wait.js';
import { contentMsg, eventMsg, InputWriter, parseValues, readTopic } from '../processor/kafka-helpers.js';

/**
 * Kafka with a password or TLS, as managed brokers ask of clients: every client of the pipeline
 * (the KafkaJS-style admin and producers, the processor's transactional producer, content table
 * and batch consumer, the sink runtime's consumer and DLQ writer) goes through the private
 * broker's SASL_PLAINTEXT (PLAIN, SCRAM-SHA-256), SSL (mutual TLS: a client certificate) or
 * SASL_SSL (SCRAM-SHA-512) listener with KAFKA_SECURITY_PROTOCOL / KAFKA_SASL_* / KAFKA_SSL_*; a
 * wrong password, an unverifiable broker certificate, or a missing or untrusted client certificate
 * fails the start.
 */

const log = createLogger(process.env.LOG_LEVEL ?? 'error', 'test-kafka-security');
const base = loadConfig();
const skip =
  base.origins.kafka === 'env'
    ? 'Kafka comes from KAFKA_BOOTSTRAP_SERVERS, not the private stack with its SASL listener'
    : false;

const sasl = (password: string, mechanism = 'PLAIN'): Record<string, string> => ({
  KAFKA_BOOTSTRAP_SERVERS: `127.0.0.1:${base.ports.kafkaSasl}`,
  KAFKA_SECURITY_PROTOCOL: 'sasl_plaintext',
  KAFKA_SASL_MECHANISM: mechanism,
  KAFKA_SASL_USERNAME: PRIVATE_SASL_USER.username,
  KAFKA_SASL_PASSWORD: password,
});
const noScram = scramReady(base.stackDir)
  ? false
  : `this stack's Kafka storage was formatted without SCRAM users (an earlier version): engage stack down, remove ${base.stackDir}/kafka/data, engage stack up`;

const content: ContentRow = {
  id: '00000000-0000-4000-8000-000000000001',
  slug: 'c-1',
  title: 'Content 1',
  content_type: 'video',
  length_seconds: 100,
  publish_ts: '2025-01-01T00:00:00.000000Z',
};

// Mutual TLS: the broker is verified against its CA, the client shows a certificate the broker trusts.
const clientId = stackClientIdentity(base.stackDir);
const tls: Record<string, string> = {
  KAFKA_BOOTSTRAP_SERVERS: `127.0.0.1:${base.ports.kafkaTls}`,
  KAFKA_SECURITY_PROTOCOL: 'ssl',
  KAFKA_SSL_CA_LOCATION: brokerCaPem(base.stackDir),
  KAFKA_SSL_CERTIFICATE_LOCATION: clientId.certificate,
  KAFKA_SSL_KEY_LOCATION: clientId.key,
};
const noClientCert = existsSync(clientId.certificate)
  ? false
  : `this stack was started by an earlier version, without a client certificate: engage stack down, then engage stack up`;

// Password and TLS together, with SCRAM: what Amazon MSK, Aiven or Redpanda Cloud ask of clients.
const saslTls = (password: string): Record<string, string> => ({
  KAFKA_BOOTSTRAP_SERVERS: `127.0.0.1:${base.ports.kafkaSaslTls}`,
  KAFKA_SECURITY_PROTOCOL: 'sasl_ssl',
  KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
  KAFKA_SASL_USERNAME: PRIVATE_SASL_USER.username,
  KAFKA_SASL_PASSWORD: password,
  KAFKA_SSL_CA_LOCATION: brokerCaPem(base.stackDir),
});

/** The processor and a sink, end to end, every client connected as `env` says. */
async function endToEnd(env: TestEnv): Promise<void> {
  const config = env.config;
  await ensureTopics(config);
  const input = await InputWriter.open(config);
  const proc = await startProcessor(config, log);
  const store = createMemoryStore();
  const runner = await startSinkRunner(
    config,
    memorySinkFactory({
      name: 'mem-secure',
      variant: 'idempotent',
      store,
      batching: { maxRecords: 100, maxWaitMs: 100 },
    }),
    log,
  );
  try {
    await input.txn([
      contentMsg(config, content),
      ...['1', '2', '3'].map((id) => eventMsg(config, { id, content_id: content.id, duration_ms: 50_000 })),
    ]);
    await input.txn([eventMsg(config, { id: '4', content_id: content.id, duration_ms: 20_000 })]);
    await waitFor('the sink has the 4 enriched events', () => store.byId.size === 4, {
      timeoutMs: 60000,
      describe: () => ({ processor: proc.status(), sink: runner.snapshot() }),
    });
    assert.deepEqual([...store.byId.values()].map((e) => e.engagement_pct).sort(), [20, 50, 50, 50]);
    // The same records, read over the plaintext listener: nothing was written anywhere else.
    const enriched = parseValues<EnrichedEvent>(await readTopic(base.kafkaBrokers, config.KAFKA_TOPIC_ENRICHED));
    assert.deepEqual(enriched.map((e) => e.event_id).sort(), ['1', '2', '3', '4']);
    // A record the processor cannot enrich goes to the DLQ through its authenticated producer.
    await input.txn([eventMsg(config, { id: '5', content_id: '00000000-0000-4000-8000-00000000dead' })]);
    await waitFor(
      'the processor parks the event of unknown content',
      async () => (await readDlq(config)).some((e) => e.stage === 'processor'),
      60000,
    );
  } finally {
    await runner.stop();
    await proc.stop();
    await input.close();
  }
}

/** A start refused by the broker: SERVICE_UNREACHABLE saying what to check, no secret in it. */
async function refused(overrides: Record<string, string>, check: RegExp): Promise<void> {
  const config = loadConfig({
    ...process.env,
    STACK_DIR: base.stackDir,
    ...overrides,
    KAFKA_TOPIC_ENRICHED: `refused-${Date.now()}.enriched`,
  });
  await assert.rejects(
    startSinkRunner(
      config,
      memorySinkFactory({ name: 'mem-refused', variant: 'idempotent', store: createMemoryStore() }),
      log,
    ),
    (err: Error) => {
      assert.ok(err instanceof PipelineError, String(err));
      assert.equal(err.code, 'SERVICE_UNREACHABLE');
      assert.match(err.message, check);
      assert.doesNotMatch(err.message, /not-the-password/);
      return true;
    },
  );
}

describe(
  'Kafka with a password or TLS (the private broker’s SASL_PLAINTEXT, SSL and SASL_SSL listeners)',
  { skip, timeout: 120000 },
  () => {
    let env: TestEnv | undefined;
    after(async () => {
      await env?.cleanup();
    });

    it('runs the processor and a sink end to end over SASL', async () => {
      env = await createTestEnv(sasl(PRIVATE_SASL_USER.password));
      assert.deepEqual(env.config.kafkaSecurity, {
        'security.protocol': 'sasl_plaintext',
        'sasl.mechanisms': 'PLAIN',
        'sasl.username': 'engage',
        'sasl.password': PRIVATE_SASL_USER.password,
      });
      await endToEnd(env);
      await env.cleanup();
      env = undefined;
    });

    it(
      'runs the processor and a sink end to end over mutual TLS, verifying the broker against the given CA',
      { skip: noClientCert },
      async () => {
        env = await createTestEnv(tls);
        assert.deepEqual(env.config.kafkaSecurity, {
          'security.protocol': 'ssl',
          'ssl.ca.location': brokerCaPem(base.stackDir),
          'ssl.certificate.location': clientId.certificate,
          'ssl.key.location': clientId.key,
        });
        await endToEnd(env);
        await env.cleanup();
        env = undefined;
      },
    );

    it('runs the processor and a sink end to end over SASL_SSL with SCRAM-SHA-512', { skip: noScram }, async () => {
      env = await createTestEnv(saslTls(PRIVATE_SASL_USER.password));
      assert.deepEqual(env.config.kafkaSecurity, {
        'security.protocol': 'sasl_ssl',
        'sasl.mechanisms': 'SCRAM-SHA-512',
        'sasl.username': 'engage',
        'sasl.password': PRIVATE_SASL_USER.password,
        'ssl.ca.location': brokerCaPem(base.stackDir),
      });
      await endToEnd(env);
      await env.cleanup();
      env = undefined;
    });

    it(
      'SCRAM-SHA-256: the right password is let in, a wrong one refused; SCRAM-SHA-512 over TLS refuses a wrong one',
      { skip: noScram },
      async () => {
        env = await createTestEnv(sasl(PRIVATE_SASL_USER.password, 'SCRAM-SHA-256'));
        await ensureTopics(env.config);
        const runner = await startSinkRunner(
          env.config,
          memorySinkFactory({ name: 'mem-scram', variant: 'idempotent', store: createMemoryStore() }),
          log,
        );
        await runner.stop();
        await env.cleanup();
        env = undefined;
        await refused(
          sasl('not-the-password', 'SCRAM-SHA-256'),
          /^Kafka at 127\.0\.0\.1:\d+ did not answer: .*check KAFKA_SASL_MECHANISM \/ KAFKA_SASL_USERNAME \/ KAFKA_SASL_PASSWORD/,
        );
        await refused(
          saslTls('not-the-password'),
          /^Kafka at 127\.0\.0\.1:\d+ did not answer: .*check KAFKA_SASL_MECHANISM \/ KAFKA_SASL_USERNAME \/ KAFKA_SASL_PASSWORD/,
        );
      },
    );

    it('a wrong password, or a broker certificate no CA vouches for, fails the start with what to check', async () => {
      await refused(
        sasl('not-the-password'),
        /^Kafka at 127\.0\.0\.1:\d+ did not answer: .*check KAFKA_SASL_MECHANISM \/ KAFKA_SASL_USERNAME \/ KAFKA_SASL_PASSWORD/,
      );
      // The system's CAs do not sign the stack's self-signed certificate: verification is on.
      await refused(
        { ...tls, KAFKA_SSL_CA_LOCATION: '' },
        /^Kafka at 127\.0\.0\.1:\d+ did not answer: .*KAFKA_SECURITY_PROTOCOL=ssl, check KAFKA_SSL_CA_LOCATION/,
      );
    });

    it(
      'mutual TLS: no client certificate, or one the broker does not trust, fails the start',
      { skip: noClientCert },
      async () => {
        const checkCert =
          /^Kafka at 127\.0\.0\.1:\d+ did not answer: .*KAFKA_SSL_CERTIFICATE_LOCATION \/ KAFKA_SSL_KEY_LOCATION/;
        await refused({ ...tls, KAFKA_SSL_CERTIFICATE_LOCATION: '', KAFKA_SSL_KEY_LOCATION: '' }, checkCert);
        const dir = mkdtempSync(path.join(os.tmpdir(), 'engage-untrusted-'));
        try {
          const stranger = { certificate: path.join(dir, 'client.pem'), key: path.join(dir, 'client.key') };
          execFileSync(
            'openssl',
            [
              'req',
              '-x509',
              '-newkey',
              'rsa:2048',
              '-nodes',
              '-days',
              '1',
              '-subj',
              '/CN=stranger',
              '-keyout',
              stranger.key,
              '-out',
              stranger.certificate,
            ],
            { stdio: 'ignore' },
          );
          await refused(
            { ...tls, KAFKA_SSL_CERTIFICATE_LOCATION: stranger.certificate, KAFKA_SSL_KEY_LOCATION: stranger.key },
            checkCert,
          );
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
    );
  },
);
