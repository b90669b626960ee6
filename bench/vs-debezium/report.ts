import type { BenchResult } from '../types.js';
import type { LatencyRun } from './latency.js';
import type { ThroughputRun } from './throughput.js';
import { TOOL_LABEL, type ToolKind } from './tools.js';

/**
 * Turns the vs-debezium bench's runs into the lines `npm run bench` prints: every run, each tool's
 * mean over its successful runs, and the ratios issue #32's targets are stated in, all from this
 * one run — engage cdc's backlog throughput against pg_recvlogical's (target ≥ 90 %) and against
 * Debezium exactly-once's (≥ 3×), its latency p99 at 1,000 rows/s against Debezium at-least-once's
 * (≤ 1×). A ratio whose runs failed is left out and said so (never a ratio of one side alone).
 */

const f0 = (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '—');
const f1 = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : '—');
const mean = (v: number[]) => (v.length ? v.reduce((a, b) => a + b, 0) / v.length : Number.NaN);
const round1 = (v: number) => Math.round(v * 10) / 10;

function throughputLines(runs: ThroughputRun[]): BenchResult[] {
  return runs.map((r) => ({
    name: `r${r.round} ${TOOL_LABEL[r.tool]}: backlog rows/s`,
    value: r.ok ? Math.round(r.rowsPerS) : 0,
    unit: 'rows/s',
    note: r.ok
      ? `${f1(r.streamS)} s + start-up ${f1(r.startupS)} s; CPU µs/row tool ${f1(r.toolUsPerRow)}, walsender ${f1(
          r.walsenderUsPerRow,
        )}, broker ${f1(r.brokerUsPerRow)} (this bench ${f1(r.readerUsPerRow)}); peak RSS ${f0(r.peakRssMiB)} MiB; load ${r.load}${r.note ? `; ${r.note}` : ''}`
      : `FAILED after ${r.counted} rows: ${r.why.slice(0, 400)}`,
  }));
}

function toolSummary(kind: ToolKind | 'recv', runs: ThroughputRun[]): BenchResult | null {
  const ok = runs.filter((r) => r.tool === kind && r.ok);
  if (ok.length === 0) return null;
  const rates = ok.map((r) => r.rowsPerS);
  const cpu = (k: 'toolUsPerRow' | 'walsenderUsPerRow' | 'brokerUsPerRow') => mean(ok.map((r) => r[k]));
  const total = cpu('toolUsPerRow') + cpu('walsenderUsPerRow') + cpu('brokerUsPerRow');
  return {
    name: `${TOOL_LABEL[kind]}: backlog rows/s, mean of ${ok.length}`,
    value: Math.round(mean(rates)),
    unit: 'rows/s',
    note: `${f0(Math.min(...rates))}–${f0(Math.max(...rates))}; CPU per row ${f1(cpu('toolUsPerRow'))} µs tool + ${f1(
      cpu('walsenderUsPerRow'),
    )} walsender + ${f1(cpu('brokerUsPerRow'))} broker = ${f1(total)} µs; peak RSS ${f0(
      Math.max(...ok.map((r) => r.peakRssMiB)),
    )} MiB; start-up ${f1(mean(ok.map((r) => r.startupS)))} s; with it ${f0(mean(ok.map((r) => r.rowsPerSWithStartup)))} rows/s`,
  };
}

function latencyLines(runs: LatencyRun[]): BenchResult[] {
  return runs.map((r) => ({
    name: `lat${r.index} ${TOOL_LABEL[r.tool]}: p99 at 1,000 rows/s`,
    value: r.ok ? r.p99 : 0,
    unit: 'ms',
    note: r.ok
      ? `p50 ${r.p50}, max ${r.max} (to LogAppendTime p50 ${r.appendP50}, p99 ${r.appendP99}); ${r.seen} rows at ${f0(
          r.offeredRowsPerS,
        )}/s; tool ${f1(r.toolUsPerRow)} µs/row, walsender ${f1(r.walsenderCpuS)} s, broker ${f1(
          r.brokerCpuS,
        )} s CPU; peak RSS ${f0(r.peakRssMiB)} MiB; load ${r.load}`
      : `FAILED: ${r.why.slice(0, 400)}`,
  }));
}

function latencySummary(kind: ToolKind, runs: LatencyRun[]): BenchResult | null {
  const ok = runs.filter((r) => r.tool === kind && r.ok);
  if (ok.length === 0) return null;
  return {
    name: `${TOOL_LABEL[kind]}: latency p99 at 1,000 rows/s, mean of ${ok.length}`,
    value: Math.round(mean(ok.map((r) => r.p99))),
    unit: 'ms',
    note: `p50 ${ok.map((r) => r.p50).join(' / ')}, p99 ${ok.map((r) => r.p99).join(' / ')} ms; CPU ${f1(
      mean(ok.map((r) => r.toolUsPerRow)),
    )} µs per row; peak RSS ${f0(Math.max(...ok.map((r) => r.peakRssMiB)))} MiB`,
  };
}

function rateOf(runs: ThroughputRun[], kind: ToolKind | 'recv'): number[] {
  return runs.filter((r) => r.tool === kind && r.ok).map((r) => r.rowsPerS);
}

function ratioLines(runs: ThroughputRun[], lat: LatencyRun[]): BenchResult[] {
  const out: BenchResult[] = [];
  const eng = rateOf(runs, 'engage');
  const perRound = [...new Set(runs.map((r) => r.round))]
    .map((round) => {
      const e = runs.find((r) => r.round === round && r.tool === 'engage' && r.ok);
      const p = runs.find((r) => r.round === round && r.tool === 'recv' && r.ok);
      return e && p ? `r${round} ${f1((e.rowsPerS / p.rowsPerS) * 100)} %` : null;
    })
    .filter((s) => s !== null);
  const recv = rateOf(runs, 'recv');
  if (eng.length && recv.length)
    out.push({
      name: 'ratio: engage cdc / pg_recvlogical throughput',
      value: round1((mean(eng) / mean(recv)) * 100),
      unit: '%',
      note: `target ≥ 90 %; per round ${perRound.join(', ')}`,
    });
  for (const [peer, target] of [
    ['dbz-eos', 'target ≥ 3×'],
    ['dbz', 'no target'],
  ] as const) {
    const p = rateOf(runs, peer);
    if (eng.length && p.length)
      out.push({
        name: `ratio: engage cdc / ${TOOL_LABEL[peer]} throughput`,
        value: Math.round((mean(eng) / mean(p)) * 100) / 100,
        unit: '×',
        note: target,
      });
  }
  const p99 = (kind: ToolKind) => lat.filter((r) => r.tool === kind && r.ok).map((r) => r.p99);
  const [e99, d99] = [p99('engage'), p99('dbz')];
  if (e99.length && d99.length)
    out.push({
      name: 'ratio: engage cdc p99 / Debezium at-least-once p99',
      value: Math.round((mean(e99) / mean(d99)) * 100) / 100,
      unit: '×',
      note: `target ≤ 1 (engage exactly-once); p99 means ${f0(mean(e99))} / ${f0(mean(d99))} ms; runs ${e99.join(
        ', ',
      )} / ${d99.join(', ')} ms`,
    });
  return out;
}

export function report(runs: ThroughputRun[], lat: LatencyRun[]): BenchResult[] {
  const kinds = ['recv', 'engage', 'dbz', 'dbz-eos'] as const;
  return [
    ...throughputLines(runs),
    ...kinds.map((k) => toolSummary(k, runs)).filter((r) => r !== null),
    ...latencyLines(lat),
    ...(['engage', 'dbz', 'dbz-eos'] as const).map((k) => latencySummary(k, lat)).filter((r) => r !== null),
    ...ratioLines(runs, lat),
  ];
}
