import { createClient } from 'redis';
import { isFresh, readHeartbeats } from '../api/heartbeats.js';
import type { LagUnit } from '../api/metrics/classify.js';
import { heartbeatInputs, MetricsSummarizer, type MetricsSummary } from '../api/metrics/summary.js';

/**
 * The figures `engage run` prints beside each component's status line: what the stage has moved,
 * its rate since the previous status line, its lag, its end-to-end freshness p99 and its DLQ
 * count. They come from the same place as the API's GET /metrics — every process's heartbeat in
 * Redis, summarised by MetricsSummarizer — so the two never disagree, and a stage run as several
 * processes is shown as one (the figure is the stage's, whichever instance produced it).
 */

export interface StageFigures {
  /** Records the stage has moved (its preferred flow counter, summed over its processes). */
  total: number;
  /** Per second since the previous sample; null on the first one. */
  perSecond: number | null;
  lag: { value: number; unit: LagUnit } | null;
  /** End-to-end freshness p99 of the last interval (or since start when nothing was observed in it). */
  p99: { value: number; unit: 'seconds' | 'ms' } | null;
  dlq: number;
}

/** Which lag a status line shows when a stage reports several (the CDC: milliseconds before bytes). */
const LAG_PREFERENCE: readonly LagUnit[] = ['records', 'ms', 'seconds', 'bytes'];

/** The figures of every stage in a /metrics summary, keyed by stage (`cdc`, `processor`, `sink-redis`…). Pure. */
export function stageFigures(summary: MetricsSummary): Map<string, StageFigures> {
  const out = new Map<string, StageFigures>();
  for (const t of summary.throughput)
    out.set(t.stage, { total: t.total, perSecond: t.per_second, lag: null, p99: null, dlq: 0 });
  for (const l of summary.lags) {
    const f = out.get(l.stage);
    if (!f || /retained/.test(l.metric)) continue;
    if (!f.lag || LAG_PREFERENCE.indexOf(l.unit) < LAG_PREFERENCE.indexOf(f.lag.unit))
      f.lag = { value: l.value, unit: l.unit };
  }
  for (const fr of summary.freshness) {
    const f = out.get(fr.stage);
    if (f && fr.p99 !== null && fr.count > 0) f.p99 = { value: fr.p99, unit: fr.unit };
  }
  for (const d of summary.dlq) {
    const f = out.get(d.stage);
    if (f) f.dlq += d.total;
  }
  return out;
}

const count = (n: number): string => Math.round(n).toLocaleString('en-US');

function duration(value: number, unit: 'seconds' | 'ms'): string {
  const ms = unit === 'seconds' ? value * 1000 : value;
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** One stage's figures as status-line text ("12,345 (980/s)  lag 12  p99 450 ms  dlq 0"). Pure. */
export function formatFigures(f: StageFigures): string {
  const parts = [`${count(f.total)} (${f.perSecond === null ? '…' : count(f.perSecond)}/s)`];
  if (f.lag) {
    const v =
      f.lag.unit === 'ms' || f.lag.unit === 'seconds'
        ? duration(f.lag.value, f.lag.unit)
        : `${count(f.lag.value)}${f.lag.unit === 'bytes' ? ' B' : ''}`;
    parts.push(`lag ${v}`);
  }
  if (f.p99) parts.push(`p99 ${duration(f.p99.value, f.p99.unit)}`);
  parts.push(`dlq ${count(f.dlq)}`);
  return parts.join('  ');
}

/**
 * Reads the pipeline's heartbeats from Redis for the status lines. `sample` never throws: with
 * Redis unreachable (or before any component has beaten) it resolves with no figures, and the
 * status lines show the processes alone.
 */
export class RunFigures {
  private readonly summarizer = new MetricsSummarizer();
  private readonly client;

  constructor(
    redisUrl: string,
    private readonly prefix: string,
  ) {
    this.client = createClient({ url: redisUrl, socket: { reconnectStrategy: false, connectTimeout: 2000 } });
    this.client.on('error', () => undefined);
  }

  async sample(nowMs = Date.now()): Promise<Map<string, StageFigures>> {
    try {
      if (!this.client.isOpen) await this.client.connect();
      const { sources, components } = heartbeatInputs(
        (await readHeartbeats(this.client, this.prefix)).filter((hb) => isFresh(hb, nowMs)),
      );
      return stageFigures(this.summarizer.summarize(sources, components, nowMs, 0));
    } catch {
      if (this.client.isOpen) await this.client.disconnect().catch(() => undefined);
      return new Map();
    }
  }

  async close(): Promise<void> {
    if (this.client.isOpen) await this.client.quit().catch(() => undefined);
  }
}
