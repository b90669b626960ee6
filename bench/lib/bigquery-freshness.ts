import { pino } from 'pino';
import type { Config } from '../../src/config/load.js';
import { deletePipelineTopics, ensureTopics } from '../../src/kafka/admin.js';
import { createKafka } from '../../src/kafka/client.js';
import { sleep } from '../../src/runtime/retry.js';
import { startSinkRunner } from '../../src/runtime/sink-runner.js';
import { warehouseSinkFactory } from '../../src/sinks/warehouse/index.js';
import type { FakesProcess } from './bigquery-fakes-client.js';
import { benchEvent } from './sink-fixtures.js';

/**
 * The freshness phase of bench/warehouse-bigquery.bench.ts: events written to an enriched topic of
 * their own at a steady rate (each with `source_ts_ms` = the moment it is sent), the BigQuery sink
 * on the Storage Write API with its DEFAULT batching (≤ 16,384 rows or 10 s per partition) reading
 * it, and for every row the time from its `source_ts_ms` to the moment the fake made it visible
 * (BatchCommitWriteStreams). It measures topic → visible; the stages before the topic (CDC,
 * processor) are not in it.
 */

export interface Freshness {
  rows: number;
  p50: number | null;
  p99: number | null;
  max: number | null;
  sent: number;
}

export async function freshnessPhase(
  base: Config,
  fakes: FakesProcess,
  opts: { id: string; seconds: number; rate: number },
): Promise<Freshness> {
  const dataset = `${opts.id}_fresh`;
  const config: Config = {
    ...base,
    KAFKA_TOPIC_ENRICHED: `${opts.id}.fresh`,
    KAFKA_CLIENT_ID: `${opts.id}-fresh`,
    BATCH_SIZE: undefined,
    WAREHOUSE_FLUSH_SECONDS: undefined,
    warehouse: 'bigquery',
    BIGQUERY_PROJECT_ID: 'bench-project',
    BIGQUERY_DATASET_ID: dataset,
    BIGQUERY_API_ENDPOINT: fakes.rest,
    BIGQUERY_STORAGE_API_ENDPOINT: fakes.storage,
    BIGQUERY_WRITE_API: 'storage',
  };
  await ensureTopics(config);
  await fakes.ask(`watch ${dataset}`);
  const runner = await startSinkRunner(config, warehouseSinkFactory, pino({ level: 'error' }));
  const producer = createKafka(config, `${config.KAFKA_CLIENT_ID}-producer`).producer({
    kafkaJS: { idempotent: true, acks: -1 },
    'linger.ms': 5,
  });
  await producer.connect();
  let sent = 0;
  try {
    const tickMs = 100;
    const perTick = Math.max(1, Math.round((opts.rate * tickMs) / 1000));
    const t0 = Date.now();
    for (let tick = 0; tick < (opts.seconds * 1000) / tickMs; tick++) {
      const now = Date.now();
      const messages = Array.from({ length: perTick }, (_, j) => {
        const e = { ...benchEvent(sent + j, now), source_ts_ms: now, processed_ts_ms: now };
        return { key: e.content_id, value: JSON.stringify(e) };
      });
      await producer.send({ topic: config.KAFKA_TOPIC_ENRICHED, messages });
      sent += perTick;
      await sleep(Math.max(0, t0 + (tick + 1) * tickMs - Date.now()));
    }
    const deadline = Date.now() + 120_000;
    while (runner.snapshot().recordsOut < sent) {
      if (Date.now() > deadline) throw new Error(`freshness phase: ${runner.snapshot().recordsOut} of ${sent} written`);
      await sleep(20);
    }
  } finally {
    await producer.disconnect();
    await runner.stop();
    await deletePipelineTopics(config).catch(() => undefined);
  }
  return { ...(await fakes.ask<Omit<Freshness, 'sent'>>(`freshness ${dataset}`)), sent };
}
