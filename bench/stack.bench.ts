import { mkdtempSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, privatePorts } from '../src/config/load.js';
import { tcpOpen } from '../src/stack/process.js';
import { stackDown, stackUp } from '../src/stack/stack.js';
import type { BenchResult } from './types.js';

/**
 * `engage stack up` from nothing: a second private stack (temp STACK_DIR, ports shifted by a free
 * STACK_PORT_OFFSET) beside the shared one — cold start (Maven classpath, initdb, Kafka storage
 * format, three services ready, topics created), each service's ready time, a warm `up` (all
 * running: the idempotent path), and `down`. Removes everything it created.
 */

async function freeOffset(): Promise<number> {
  for (let offset = 300; offset < 500; offset += 10) {
    const p = privatePorts(offset);
    const taken = await Promise.all(
      [p.postgres, p.kafka, p.kafkaController, p.redis].map((port) => tcpOpen('127.0.0.1', port, 300)),
    );
    if (!taken.some(Boolean)) return offset;
  }
  throw new Error('no free STACK_PORT_OFFSET between 300 and 490');
}

const seconds = (ms: number) => Math.round(ms / 100) / 10;

export async function run(): Promise<BenchResult[]> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'engage-stack-bench-'));
  const stackDir = path.join(root, 'stack');
  const offset = await freeOffset();
  const config = loadConfig({ STACK_DIR: stackDir, STACK_PORT_OFFSET: String(offset), LOG_LEVEL: 'warn' }, root);
  const results: BenchResult[] = [];
  try {
    const ready: Record<string, number> = {};
    const t0 = performance.now();
    await stackUp(config, { onReady: (s, ms) => (ready[s.name] = ms) });
    results.push({
      name: 'stack up, cold (from nothing, all three private)',
      value: seconds(performance.now() - t0),
      unit: 's',
      note: `STACK_PORT_OFFSET=${offset}`,
    });
    for (const name of ['postgres', 'kafka', 'redis']) {
      results.push({ name: `  ${name} ready (cold)`, value: seconds(ready[name] ?? NaN), unit: 's' });
    }
    const t1 = performance.now();
    await stackUp(config);
    results.push({
      name: 'stack up, warm (everything already running)',
      value: seconds(performance.now() - t1),
      unit: 's',
    });
    const t2 = performance.now();
    await stackDown(config);
    results.push({ name: 'stack down', value: seconds(performance.now() - t2), unit: 's' });
  } finally {
    await stackDown(config).catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
    const fallback = path.join(
      '/var/tmp',
      `engage-stack-${createHash('sha1').update(path.resolve(stackDir)).digest('hex').slice(0, 12)}`,
    );
    rmSync(fallback, { recursive: true, force: true });
  }
  return results;
}
