import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadConfig } from '../src/config/load.js';
import { createLogger } from '../src/core/logger.js';
import type { SinkBatch } from '../src/core/sink-contract.js';
import { EXTERNAL_WRITE_CONCURRENCY, ExternalSink } from '../src/sinks/external/index.js';
import { makeBatch, range } from '../test/sinks/external/external-fixtures.js';
import type { BenchResult } from './types.js';

/**
 * External sink throughput: events/s through `write()` into the reference receiver, which runs in
 * its own process (as the real external system would), on the loopback. Pseudonymisation is on
 * (an HMAC per event), auth header set. Batches are built before the clock starts; the figure
 * covers pseudonymise + serialise + POST + the receiver's parse, dedup and answer.
 * Target (issue 5): at least 20,000 events/s.
 */

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const AUTH = 'Authorization: Bearer bench-token';
const EVENTS_PER_RUN = Number(process.env.BENCH_EXTERNAL_EVENTS ?? 60_000);

function startReceiverProcess(): Promise<{ url: string; proc: ChildProcess }> {
  const entry = pathToFileURL(path.join(root, 'src/receiver/index.ts')).href;
  const script = `const m = await import(${JSON.stringify(entry)});
const r = await m.startReceiver({ port: 0, auth: ${JSON.stringify(AUTH)}, maxStoredEvents: 1000 });
process.stdout.write('URL ' + r.url + '\\n');
process.on('SIGTERM', () => r.close().then(() => process.exit(0)));`;
  const proc = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('receiver did not start within 60 s')), 60_000);
    proc.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /URL (\S+)/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve({ url: m[1], proc });
      }
    });
    proc.once('exit', (code) => reject(new Error(`receiver exited with ${code}`)));
  });
}

async function stats(url: string): Promise<{ events_unique: number; requests: number }> {
  return (await (await fetch(url.replace(/\/events$/, '/stats'))).json()) as {
    events_unique: number;
    requests: number;
  };
}

/** CPU seconds (user + system) used so far by process `pid` (Linux /proc); NaN elsewhere. */
function cpuSecondsOf(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return Number.NaN;
  }
}

interface Measured {
  rate: number;
  sinkCpuUsPerEvent: number;
  receiverCpuUsPerEvent: number;
}

/** Writes `batches` through `lanes` concurrent writers (one per partition): events/s and CPU per event. */
async function measure(
  sink: ExternalSink,
  batches: SinkBatch[],
  lanes: number,
  receiverPid?: number,
): Promise<Measured> {
  const events = batches.reduce((n, b) => n + b.records.length, 0);
  let next = 0;
  const cpu0 = process.cpuUsage();
  const rcpu0 = cpuSecondsOf(receiverPid);
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      for (let i = next++; i < batches.length; i = next++) {
        const batch = batches[i];
        if (batch) await sink.write(batch);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return {
    rate: events / seconds,
    sinkCpuUsPerEvent: (cpu.user + cpu.system) / events,
    receiverCpuUsPerEvent: ((cpuSecondsOf(receiverPid) - rcpu0) * 1e6) / events,
  };
}

export async function run(): Promise<BenchResult[]> {
  const { url, proc } = await startReceiverProcess();
  const base = loadConfig();
  const config = {
    ...base,
    EXTERNAL_API_URL: url,
    EXTERNAL_API_AUTH_HEADER: AUTH,
    EXTERNAL_PSEUDONYMIZE_KEY: 'bench-pseudonymisation-key-0123456789',
    EXTERNAL_API_TIMEOUT_MS: 30_000,
  };
  const sink = new ExternalSink({ config, log: createLogger('warn', 'bench-external') });
  await sink.start();
  const results: BenchResult[] = [];
  let nextId = 1;
  const batchesOf = (size: number, total = EVENTS_PER_RUN): SinkBatch[] => {
    const out: SinkBatch[] = [];
    for (let sent = 0; sent < total; sent += size) {
      out.push(makeBatch(range(nextId, size), nextId));
      nextId += size;
    }
    return out;
  };
  try {
    await measure(sink, batchesOf(500, 5000), 1); // warm-up: JIT, connections
    for (const [size, lanes] of [
      [100, 1],
      [500, 1],
      [1000, 1],
      [2000, 1],
      [1000, EXTERNAL_WRITE_CONCURRENCY],
      [1000, 3],
    ] as const) {
      const m = await measure(sink, batchesOf(size), lanes, proc.pid);
      results.push({
        name: `external sink → receiver, batch ${size}, ${lanes} writer${lanes > 1 ? 's' : ''}`,
        value: Math.round(m.rate),
        unit: 'events/s',
        note: `${EVENTS_PER_RUN.toLocaleString('en-US')} events; CPU per event: sink ${m.sinkCpuUsPerEvent.toFixed(1)} µs, receiver ${m.receiverCpuUsPerEvent.toFixed(1)} µs${size === 1000 && lanes === EXTERNAL_WRITE_CONCURRENCY ? '; the runner’s default (batch 1000, writeConcurrency 2)' : ''}; load average ${os
          .loadavg()
          .map((l) => l.toFixed(1))
          .join(' / ')}`,
      });
      if (size === 1000 && lanes === 1) {
        results.push({
          name: 'external sink CPU per event (batch 1000)',
          value: Number(m.sinkCpuUsPerEvent.toFixed(2)),
          unit: 'µs/event',
          note: `one core could push ${Math.round(1e6 / m.sinkCpuUsPerEvent).toLocaleString('en-US')} events/s through the sink, ${Math.round(1e6 / m.receiverCpuUsPerEvent).toLocaleString('en-US')} through the receiver`,
        });
      }
    }
    const s = await stats(url);
    if (s.events_unique !== nextId - 1)
      throw new Error(`receiver counted ${s.events_unique} unique events, ${nextId - 1} were sent`);
  } finally {
    await sink.close();
    proc.kill('SIGTERM');
  }
  return results;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const r of await run())
    console.log(`${r.name.padEnd(50)} ${String(r.value).padStart(8)} ${r.unit}  (${r.note ?? ''})`);
}
