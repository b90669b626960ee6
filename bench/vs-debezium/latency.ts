import path from 'node:path';
import { dropSlot, logAppendTopics, percentile, sleep, type Ctx } from './context.js';
import { CpuTracker, loadText, peakRssMiB, walsenderPid } from './procs.js';
import { TopicReader } from './reader.js';
import { primeSlot, startTool, type ToolKind } from './tools.js';
import { insertRows, steadyLoad } from './workload.js';

/**
 * One tool's latency at 1,000 rows/s (100 transactions of 10 rows a second for `latencySeconds`):
 * from the PostgreSQL commit (`source.ts_ms`, which engage cdc and Debezium both set to it) to the
 * record being readable by a read_committed reader (its arrival in this process), and to the broker's
 * LogAppendTime. The tool gets a fresh slot and topic; then the same load runs `latencyWarmupSeconds`
 * with rows marked `warmup`, and every one of them must have come through before the measured load
 * starts: the tool is streaming at that rate, its start-up and the JVM's first compilations behind it. Producers as each tool
 * ships them for latency: engage cdc with its defaults, Debezium with linger 5 ms.
 *
 * Contract: returns the percentiles over every load row seen (ok when all were seen within 30 s of
 * the load's end), the offered rate, the tool's CPU per row over the load, its walsender's and the
 * broker's CPU seconds, peak RSS. The slot is dropped and the tool stopped whatever happens.
 */

export interface LatencyRun {
  tool: ToolKind;
  index: number;
  ok: boolean;
  why: string;
  rows: number;
  seen: number;
  offeredRowsPerS: number;
  late: number;
  p50: number;
  p99: number;
  max: number;
  appendP50: number;
  appendP99: number;
  toolUsPerRow: number;
  walsenderCpuS: number;
  brokerCpuS: number;
  peakRssMiB: number;
  load: string;
}

const TXN_PER_S = 100;
const ROWS_PER_TXN = 10;

export async function latencyRun(c: Ctx, kind: ToolKind, index: number): Promise<LatencyRun> {
  const name = `lat${index}-${kind}`;
  const slot = `lat${index}_${kind.replace('-', '_')}`;
  const topic = kind === 'engage' ? `bench-engage-lat${index}` : `${name}.public.engagement_events`;
  await logAppendTopics(c.config, [topic]);
  await primeSlot(c.setup, c.db, kind, { slot, topic });
  const readable: number[] = [];
  const appended: number[] = [];
  let warm = 0;
  let bad = 0;
  const reader = await TopicReader.start(c.config, topic, c.config.KAFKA_TOPIC_PARTITIONS, (v, ts, now) => {
    const e = JSON.parse(v.toString()) as { after?: { device?: string }; source?: { ts_ms?: number } };
    const commit = e.source?.ts_ms;
    if (e.after?.device === 'warmup') warm++;
    else if (typeof commit !== 'number') bad++;
    else {
      readable.push(now - commit);
      appended.push(ts - commit);
    }
  });
  const tool = await startTool(c.setup, kind, { name, slot, topic, lingerMs: 5, dir: path.join(c.workDir, name) });
  const until = async (what: string, check: () => Promise<boolean> | boolean, ms: number) => {
    const deadline = Date.now() + ms;
    while (!(await check())) {
      const failure = await tool.failure();
      if (failure) throw new Error(failure);
      if (Date.now() > deadline) throw new Error(`${what} not within ${ms / 1000} s`);
      await sleep(100);
    }
  };
  try {
    let wal: number | undefined;
    await until('the slot in use', async () => (wal = await walsenderPid(c.db, slot)) !== undefined, 300_000);
    await c.db.query(insertRows(ROWS_PER_TXN, 'warmup'));
    await until('the first warm-up rows', () => warm >= ROWS_PER_TXN, 120_000);
    const w = await steadyLoad(c.config.databaseUrl, c.latencyWarmupSeconds, TXN_PER_S, ROWS_PER_TXN, 'warmup');
    await until('every warm-up row', () => warm >= ROWS_PER_TXN + w.rows, 120_000);
    await sleep(1000);
    const toolCpu = new CpuTracker(() => tool.pids());
    const others = [new CpuTracker(() => [wal]), new CpuTracker(() => [c.brokerPid])] as const;
    const m0 = [toolCpu.mark(), others[0].mark(), others[1].mark()] as const;
    const load0 = loadText();
    const offered = await steadyLoad(c.config.databaseUrl, c.latencySeconds, TXN_PER_S, ROWS_PER_TXN);
    await until('every row', () => readable.length + bad >= offered.rows, 30_000).catch(() => undefined);
    const cpu = CpuTracker.between(m0[0], toolCpu.mark());
    const peak = peakRssMiB(tool.mainPid());
    readable.sort((a, b) => a - b);
    appended.sort((a, b) => a - b);
    const seen = readable.length;
    return {
      ...{ tool: kind, index, ok: seen === offered.rows, rows: offered.rows, seen },
      why:
        seen === offered.rows
          ? ''
          : `${seen} of ${offered.rows} rows seen${bad ? `, ${bad} without source.ts_ms` : ''}`,
      ...{ offeredRowsPerS: offered.offeredRowsPerSecond, late: offered.late },
      ...{ p50: percentile(readable, 50), p99: percentile(readable, 99), max: readable[seen - 1] ?? Number.NaN },
      ...{ appendP50: percentile(appended, 50), appendP99: percentile(appended, 99) },
      toolUsPerRow: (cpu * 1e6) / offered.rows,
      walsenderCpuS: CpuTracker.between(m0[1], others[0].mark()),
      brokerCpuS: CpuTracker.between(m0[2], others[1].mark()),
      peakRssMiB: peak,
      load: `${load0} → ${loadText()}`,
    };
  } catch (err) {
    return { ...empty(kind, index), why: err instanceof Error ? err.message : String(err) };
  } finally {
    await tool.stop();
    await reader.stop();
    await dropSlot(c.db, slot);
  }
}

function empty(kind: ToolKind, index: number): LatencyRun {
  const nan = Number.NaN;
  return {
    ...{ tool: kind, index, ok: false, why: '', rows: 0, seen: 0, offeredRowsPerS: nan, late: 0 },
    ...{ p50: nan, p99: nan, max: nan, appendP50: nan, appendP99: nan, toolUsPerRow: nan },
    ...{ walsenderCpuS: nan, brokerCpuS: nan, peakRssMiB: 0, load: '' },
  };
}
