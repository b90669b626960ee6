import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, type Config } from '../src/config/load.js';
import { deletePipelineTopics, ensureTopics } from '../src/kafka/admin.js';
import { createKafka } from '../src/kafka/client.js';
import { sleep } from '../src/runtime/retry.js';
import { sinkGroupId } from '../src/runtime/sink-runner-options.js';
import { engageEntry } from '../src/supervisor/entry.js';
import { groupLag } from './lib/lag.js';
import { cpuSeconds, loadAverage } from './lib/proc-stats.js';
import { EVENTS, fill, startReceiverProcess } from './lib/sink-fixtures.js';
import type { BenchResult } from './types.js';

/**
 * The three sinks together, as `engage run` runs them: each `engage sink <name>` its own process
 * and consumer group, all started at once over the same pre-filled enriched topic (a backlog: what
 * an outage or a replay leaves), the reference receiver its own process. Reports how long until
 * each sink's group has committed every record, and until the last of the three has: the fan-out's
 * drain rate on this machine, the processes sharing its cores. Offsets are committed every second,
 * so a sink's end is seen up to ~1 s late. BATCH_SIZE 20,000 and a 1 s flush for the warehouse.
 */

const SINKS = ['redis', 'warehouse', 'external'] as const;
const TIMEOUT_MS = 300_000;

export async function run(): Promise<BenchResult[]> {
  const id = `bench${randomBytes(3).toString('hex')}`;
  const base = loadConfig();
  const work = mkdtempSync(path.join(os.tmpdir(), 'engage-sinks-bench-'));
  const topics = {
    KAFKA_TOPIC_ENRICHED: `${id}.enriched`,
    KAFKA_TOPIC_DLQ: `${id}.dlq`,
    KAFKA_TOPIC_ENGAGEMENT_EVENTS: `${id}.events`,
    KAFKA_TOPIC_CONTENT: `${id}.content`,
    KAFKA_TOPIC_CDC_POSITION: `${id}.cdc-position`,
  };
  const config: Config = { ...base, ...topics, KAFKA_TOPIC_PARTITIONS: 3, KAFKA_CLIENT_ID: `engage-${id}` };
  const admin = createKafka(config, `${config.KAFKA_CLIENT_ID}-bench`).admin();
  const children: ChildProcess[] = [];
  const receiver = await startReceiverProcess();
  try {
    await admin.connect();
    await ensureTopics(config);
    await fill(config);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...topics,
      KAFKA_TOPIC_PARTITIONS: '3',
      KAFKA_CLIENT_ID: config.KAFKA_CLIENT_ID,
      DUCKDB_PATH: path.join(work, 'wh.duckdb'),
      BATCH_SIZE: '20000',
      WAREHOUSE_FLUSH_SECONDS: '1',
      EXTERNAL_API_URL: receiver.url,
      LOG_LEVEL: 'warn',
    };
    const entry = engageEntry();
    const receiverCpu0 = cpuSeconds(receiver.pid);
    const t0 = performance.now();
    const procs = SINKS.map((name) => {
      const child = spawn(entry.node, [...entry.args, 'sink', name], { stdio: ['ignore', 'ignore', 'inherit'], env });
      children.push(child);
      return { name, child, doneAt: undefined as number | undefined, cpu: 0 };
    });
    while (procs.some((p) => p.doneAt === undefined)) {
      if (performance.now() - t0 > TIMEOUT_MS)
        throw new Error(`not every sink had every record after ${TIMEOUT_MS / 1000} s`);
      for (const p of procs) {
        if (p.doneAt !== undefined) continue;
        if (p.child.exitCode !== null)
          throw new Error(`engage sink ${p.name} exited (${p.child.exitCode}) before it had every record`);
        p.cpu = cpuSeconds(p.child.pid);
        if ((await groupLag(admin, sinkGroupId(config, p.name), config.KAFKA_TOPIC_ENRICHED)) === 0)
          p.doneAt = performance.now();
      }
      await sleep(100);
    }
    const seconds = (Math.max(...procs.map((p) => p.doneAt ?? 0)) - t0) / 1000;
    const receiverCpu = cpuSeconds(receiver.pid) - receiverCpu0;
    const perEvent = (cpu: number) => `${((cpu / EVENTS) * 1e6).toFixed(1)} µs`;
    const results: BenchResult[] = [
      {
        name: 'three sinks together, each its own process (backlog drain)',
        value: Math.round(EVENTS / seconds),
        unit: 'events/s',
        note: `${EVENTS} events on 3 partitions until the last sink's group committed them all, ${seconds.toFixed(1)} s from spawning the three (process start included); CPU per event (process start included): ${procs.map((p) => `${p.name} ${perEvent(p.cpu)}`).join(', ')}, receiver ${perEvent(receiverCpu)}; load average ${loadAverage().toFixed(2)}`,
      },
    ];
    for (const p of procs) {
      const s = ((p.doneAt ?? 0) - t0) / 1000;
      results.push({
        name: `  ${p.name} sink, beside the other two`,
        value: Math.round(EVENTS / s),
        unit: 'events/s',
        note: `every record committed ${s.toFixed(1)} s after the spawn`,
      });
    }
    return results;
  } finally {
    await Promise.all(
      children.map((c) =>
        c.exitCode !== null
          ? Promise.resolve()
          : new Promise<void>((resolve) => {
              c.once('exit', () => resolve());
              c.kill('SIGTERM');
            }),
      ),
    );
    await receiver.stop();
    await admin.disconnect().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
    await deletePipelineTopics(config).catch(() => undefined);
  }
}
