import path from 'node:path';
import { recvlogicalDecode } from '../lib/ceilings.js';
import { childPids } from '../lib/proc-stats.js';
import { commOf, sleep, type Ctx } from './context.js';
import { CpuTracker, loadText, peakRssMiB, walsenderPid, type CpuMark } from './procs.js';
import { CommittedWatch, readableAt, readBack, type ReadBack } from './committed.js';
import { startTool, type ToolKind } from './tools.js';

/**
 * One tool over the backlog a round committed (the rows were committed while no tool ran, after
 * every tool's slot was created, so each decodes the same WAL from its own slot).
 *
 * Kafka tools write a fresh topic; while they run, this process only polls its last stable offsets
 * (committed.ts), so it takes no CPU from the tool. The stream is timed from the first record's
 * LogAppendTime to the moment the last row became readable under read_committed (the start-up,
 * t0 → first record, is given apart); the rows are counted once the offsets stop moving.
 * pg_recvlogical (the ceiling, no Kafka) decodes to /dev/null up to the backlog's end LSN, timed
 * from launch to exit.
 *
 * CPU per row: the tool's processes and the broker over the stream (first to last committed change),
 * from /proc; the walsender's over its whole life (it starts with the tool and decodes only this
 * backlog, much of it before the first record reaches Kafka); this process's apart. Peak RSS is the
 * tool's main process's VmHWM. A run that fails (tool died, task failed, no record within 300 s,
 * no progress for 30 s, 600 s in all) is returned with `why`.
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
  /** This process over the stream (polling the committed offsets), not the tool's. */
  readerUsPerRow: number;
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
    readerUsPerRow: 0,
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
  const partitions = c.config.KAFKA_TOPIC_PARTITIONS;
  const watch = CommittedWatch.create(c.config, run.topic, partitions);
  const brokerCpu = new CpuTracker(() => [c.brokerPid]);
  const broker0 = brokerCpu.mark();
  const load0 = loadText();
  const tool = await startTool(c.setup, kind, { ...run, lingerMs: 100, dir: path.join(c.workDir, run.name) });
  const toolCpu = new CpuTracker(() => tool.pids());
  let wal: number | undefined;
  const walCpu = new CpuTracker(() => [wal]);
  const tool0: CpuMark = kind === 'dbz-eos' ? toolCpu.mark() : new Map();
  const marks = () => ({ tool: toolCpu.mark(), broker: brokerCpu.mark(), self: process.cpuUsage() });
  // CPU over the stream: from the first committed record seen to the last change of the offsets.
  let first: ReturnType<typeof marks> | undefined;
  let last: ReturnType<typeof marks> | undefined;
  let lastChange = Date.now();
  let lastCheck = 0;
  let why = '';
  let back: ReadBack | undefined;
  try {
    for (;;) {
      const { sum, changed } = await watch.poll();
      const now = Date.now();
      if (changed && sum > 0) [last, lastChange] = [marks(), now];
      first ??= last;
      wal ??= await walsenderPid(c.db, run.slot).catch(() => undefined);
      if (sum >= c.rows && now - lastChange > 1500) {
        back = await readBack(c.config, run.topic, partitions, c.rows);
        if (back.rows >= c.rows) break;
        lastChange = Date.now(); // commit markers took offsets too: not every row is there yet
      }
      if (now - lastCheck >= 1000) {
        lastCheck = now;
        walCpu.mark();
        const failure = await tool.failure();
        if (failure) why = failure;
        else if (sum === 0 && now - tool.t0 > 300_000) why = 'no record within 300 s';
        else if (now - tool.t0 > 600_000) why = 'not done within 600 s';
        else if (sum > 0 && now - lastChange > 30_000) why = `stalled at offsets ${sum} for 30 s`;
        if (why) break;
      }
      await sleep(20);
    }
  } finally {
    watch.close();
  }
  const wal1 = walCpu.mark();
  const peak = peakRssMiB(tool.mainPid());
  const load1 = loadText();
  back ??= await readBack(c.config, run.topic, partitions, c.rows, 1000);
  await tool.stop();
  const doneAt = readableAt(watch.samples, back.lastRowOffset);
  const ok = why === '' && back.rows >= c.rows && Number.isFinite(doneAt);
  const streamS = ok ? (doneAt - back.firstAppend) / 1000 : Number.NaN;
  const [s0, s1] = [first ?? { tool: tool0, broker: broker0, self: process.cpuUsage() }, last ?? marks()];
  const self = process.cpuUsage(s0.self);
  const selfLast = process.cpuUsage(s1.self);
  return {
    tool: kind,
    round,
    ok,
    why,
    counted: back.rows,
    startupS: (back.firstAppend - tool.t0) / 1000,
    streamS,
    rowsPerS: c.rows / streamS,
    rowsPerSWithStartup: ok ? c.rows / ((doneAt - tool.t0) / 1000) : Number.NaN,
    toolUsPerRow: us(CpuTracker.between(s0.tool, s1.tool), c.rows),
    walsenderUsPerRow: us(CpuTracker.between(new Map(), wal1), c.rows),
    brokerUsPerRow: us(CpuTracker.between(s0.broker, s1.broker), c.rows),
    toolCpuTotalS: CpuTracker.between(tool0, s1.tool),
    readerUsPerRow: (self.user + self.system - selfLast.user - selfLast.system) / c.rows,
    peakRssMiB: peak,
    load: `${load0} → ${load1}`,
    note: tool.note,
  };
}
