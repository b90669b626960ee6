import path from 'node:path';
import { recvlogicalDecode } from '../lib/ceilings.js';
import { childPids } from '../lib/proc-stats.js';
import { commOf, sleep, type Ctx } from './context.js';
import { CpuTracker, loadText, peakRssMiB, walsenderPid, type CpuMark } from './procs.js';
import { TopicReader } from './reader.js';
import { startTool, type ToolKind } from './tools.js';

/**
 * One tool over the backlog a round committed (the rows were committed while no tool ran, after
 * every tool's slot was created, so each decodes the same WAL from its own slot).
 *
 * Kafka tools: a read_committed reader of the tool's fresh topic runs before the tool starts; the
 * stream is timed from the first record's LogAppendTime to the moment the reader has every row
 * (the start-up, t0 → first record, is given apart). pg_recvlogical (the ceiling, no Kafka) decodes
 * to /dev/null up to the backlog's end LSN, timed from launch to exit.
 *
 * CPU per row over the stream: the tool's processes and the broker, from /proc; the walsender's over
 * its whole life (it starts with the tool and decodes only this backlog, much of it before the first
 * record reaches Kafka); peak RSS is the tool's main process's VmHWM. A run that fails (tool died, task
 * failed, no record within 300 s, no progress for 30 s, 600 s in all) is returned with `why`.
 */

export interface ThroughputRun {
  tool: ToolKind | 'recv';
  round: number;
  ok: boolean;
  why: string;
  counted: number;
  startupS: number;
  streamS: number;
  rowsPerS: number;
  rowsPerSWithStartup: number;
  toolUsPerRow: number;
  walsenderUsPerRow: number;
  brokerUsPerRow: number;
  toolCpuTotalS: number;
  peakRssMiB: number;
  load: string;
  note: string;
}

const us = (seconds: number, rows: number) => (rows > 0 ? (seconds * 1e6) / rows : Number.NaN);

export async function recvRun(c: Ctx, round: number, slot: string, endLsn: string): Promise<ThroughputRun> {
  let recv: number | undefined;
  let wal: number | undefined;
  let peak = 0;
  const tool = new CpuTracker(() => [recv]);
  const walCpu = new CpuTracker(() => [wal]);
  const load0 = loadText();
  const t0 = Date.now();
  let done = false;
  const decoding = recvlogicalDecode(c.config, slot, endLsn).finally(() => (done = true));
  while (!done) {
    recv ??= childPids(process.pid).find((p) => commOf(p) === 'pg_recvlogical');
    wal ??= await walsenderPid(c.db, slot).catch(() => undefined);
    peak = Math.max(peak, peakRssMiB(recv));
    tool.mark();
    walCpu.mark();
    await Promise.race([decoding.catch(() => undefined), sleep(20)]);
  }
  await decoding;
  const seconds = (Date.now() - t0) / 1000;
  const cpu = CpuTracker.between(new Map(), tool.mark());
  return {
    tool: 'recv',
    round,
    ok: true,
    why: '',
    counted: c.rows,
    startupS: 0,
    streamS: seconds,
    rowsPerS: c.rows / seconds,
    rowsPerSWithStartup: c.rows / seconds,
    toolUsPerRow: us(cpu, c.rows),
    walsenderUsPerRow: us(CpuTracker.between(new Map(), walCpu.mark()), c.rows),
    brokerUsPerRow: 0,
    toolCpuTotalS: cpu,
    peakRssMiB: peak,
    load: `${load0} → ${loadText()}`,
    note: 'to /dev/null, no Kafka',
  };
}

export async function kafkaToolRun(
  c: Ctx,
  kind: ToolKind,
  round: number,
  run: { name: string; slot: string; topic: string },
): Promise<ThroughputRun> {
  let counted = 0;
  let firstAppend = Number.NaN;
  let doneAt = 0;
  const reader = await TopicReader.start(c.config, run.topic, c.config.KAFKA_TOPIC_PARTITIONS, (_v, ts, now) => {
    if (counted++ === 0) firstAppend = ts;
    if (counted === c.rows) doneAt = now;
  });
  const brokerCpu = new CpuTracker(() => [c.brokerPid]);
  const broker0 = brokerCpu.mark();
  const load0 = loadText();
  const tool = await startTool(c.setup, kind, { ...run, lingerMs: 100, dir: path.join(c.workDir, run.name) });
  const toolCpu = new CpuTracker(() => tool.pids());
  let wal: number | undefined;
  const walCpu = new CpuTracker(() => [wal]);
  const tool0: CpuMark = kind === 'dbz-eos' ? toolCpu.mark() : new Map();
  let stream0: { tool: CpuMark; broker: CpuMark } | undefined;
  let why = '';
  let lastCount = 0;
  let lastGrowth = Date.now();
  for (let i = 0; doneAt === 0; i++) {
    const now = Date.now();
    wal ??= await walsenderPid(c.db, run.slot).catch(() => undefined);
    if (counted > 0 && !stream0) stream0 = { tool: toolCpu.mark(), broker: brokerCpu.mark() };
    if (i % 10 === 0) {
      toolCpu.mark();
      walCpu.mark();
      const failure = await tool.failure();
      if (failure) why = failure;
      else if (counted === 0 && now - tool.t0 > 300_000) why = 'no record within 300 s';
      else if (now - tool.t0 > 600_000) why = 'not done within 600 s';
      else if (counted > lastCount) [lastCount, lastGrowth] = [counted, now];
      else if (counted > 0 && now - lastGrowth > 30_000) why = `stalled at ${counted} rows for 30 s`;
      if (why) break;
    }
    await sleep(100);
  }
  const end = { tool: toolCpu.mark(), wal: walCpu.mark(), broker: brokerCpu.mark() };
  const peak = peakRssMiB(tool.mainPid());
  const load1 = loadText();
  await tool.stop();
  await reader.stop();
  const ok = why === '' && counted >= c.rows;
  const s0 = stream0 ?? { tool: tool0, broker: broker0 };
  const streamS = ok ? (doneAt - firstAppend) / 1000 : Number.NaN;
  return {
    tool: kind,
    round,
    ok,
    why,
    counted,
    startupS: (firstAppend - tool.t0) / 1000,
    streamS,
    rowsPerS: c.rows / streamS,
    rowsPerSWithStartup: ok ? c.rows / ((doneAt - tool.t0) / 1000) : Number.NaN,
    toolUsPerRow: us(CpuTracker.between(s0.tool, end.tool), c.rows),
    walsenderUsPerRow: us(CpuTracker.between(new Map(), end.wal), c.rows),
    brokerUsPerRow: us(CpuTracker.between(s0.broker, end.broker), c.rows),
    toolCpuTotalS: CpuTracker.between(tool0, end.tool),
    peakRssMiB: peak,
    load: `${load0} → ${load1}`,
    note: tool.note,
  };
}
