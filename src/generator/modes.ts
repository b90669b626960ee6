import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import type { Config } from '../config/load.js';
import { PipelineError } from '../core/errors.js';
import { EventEngine } from './engine.js';
import { randomSeed } from './random.js';
import type { GeneratedEvent } from './session.js';
import { DAY_MS, MINUTE_MS, batchSlices, historicalSlices, type Slice } from './timeline.js';
import { connect, copyEvents, loadCatalogue } from './writer.js';

/**
 * The three ways `engage generate` runs, callable in-process (tests, benchmarks, `engage run`).
 * Each reads the catalogue once, writes through its own connection, stops early — keeping what it
 * already committed — when `signal` aborts, and resolves with a summary.
 */

export type GenerateMode = 'continuous' | 'batch' | 'historical';
export const GENERATE_MODES: readonly GenerateMode[] = ['continuous', 'batch', 'historical'];

export interface GenerateSummary {
  mode: GenerateMode;
  rows: number;
  sessions: number;
  seconds: number;
  rowsPerSecond: number;
  seed: number | string;
  /** True when the run was stopped (signal) before producing everything it planned. */
  interrupted: boolean;
}

export interface Progress {
  mode: GenerateMode;
  rows: number;
  /** Planned total, when known (batch, historical, continuous with a duration). */
  total?: number;
  elapsedMs: number;
}

export interface CommonOptions {
  /** Same seed (with the same catalogue and `nowMs`) → the same rows. Default: a random seed. */
  seed?: number | string;
  /** User pool size (default 5000). */
  users?: number;
  /** The time the run is anchored at (default: the clock at start). */
  nowMs?: number;
  onProgress?: (p: Progress) => void;
}

/** Bulk modes write with COPY: these tune how. */
export interface BulkOptions extends CommonOptions {
  /** Rows per COPY transaction (default 50000). */
  chunkRows?: number;
  /** Concurrent connections writing (default 2). */
  connections?: number;
}

export interface BatchOptions extends BulkOptions {
  batchSize: number;
  /** Rows are spread over this many minutes before now (default 10). */
  windowMinutes?: number;
}

export interface HistoricalOptions extends BulkOptions {
  days: number;
  /** Exact number of events per day (default 10000). */
  eventsPerDay?: number;
}

export interface ContinuousOptions extends CommonOptions {
  /** Events per second (default 10). */
  rate?: number;
  /** Stop after this many seconds, having produced floor(rate × duration) events; default: until aborted. */
  durationSeconds?: number;
  /** Sessions in flight at once (default: about three seconds' worth of events, 8–500). */
  concurrency?: number;
}

type DbConfig = Pick<Config, 'databaseUrl'>;

/** Rows generated (and sorted by time) as one unit; several make one COPY transaction. */
const SLICE_ROWS = 2_000;

function positiveInt(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1)
    throw new PipelineError('USAGE', `${name} must be a whole number ≥ 1 (got ${value})`);
}

async function prepare(
  config: DbConfig,
  opts: CommonOptions,
): Promise<{ client: pg.Client; engine: EventEngine; seed: number | string }> {
  const seed = opts.seed ?? randomSeed();
  const client = await connect(config.databaseUrl);
  try {
    const catalogue = await loadCatalogue(client);
    return { client, engine: new EventEngine({ catalogue, seed, users: opts.users }), seed };
  } catch (err) {
    await client.end().catch(() => undefined);
    throw err;
  }
}

type IndexedSlice = { slice: Slice; index: number };

/**
 * Batch and historical: the planned slices, grouped into COPY transactions of about `chunkRows`
 * rows, written by `connections` concurrent connections (PostgreSQL checks the foreign key and
 * updates the indexes per row, so a second backend roughly doubles what the server can take).
 * Rows do not depend on which connection writes them: each slice has its own random stream.
 */
async function writeSlices(
  mode: GenerateMode,
  config: DbConfig,
  opts: CommonOptions & { chunkRows?: number; connections?: number },
  plan: (nowMs: number) => Slice[],
  signal: AbortSignal | undefined,
): Promise<GenerateSummary> {
  const { client, engine, seed } = await prepare(config, opts);
  const clients = [client];
  const t0 = performance.now();
  let rows = 0;
  let streamed = 0;
  let total = 0;
  try {
    const nowMs = opts.nowMs ?? Date.now();
    const slices = plan(nowMs);
    total = slices.reduce((n, s) => n + s.quota, 0);
    const groups = transactions(slices, opts.chunkRows ?? 50_000);
    const wanted = Math.max(1, Math.min(opts.connections ?? 2, Math.ceil(total / (opts.chunkRows ?? 50_000))));
    while (clients.length < wanted) clients.push(await connect(config.databaseUrl));
    let failed = false;
    const worker = async (c: pg.Client) => {
      for (let next = groups.next(); !next.done && !failed && !signal?.aborted; next = groups.next()) {
        const group = next.value;
        try {
          await copyEvents(c, engine.chunks(group, nowMs), (n) => {
            streamed += n;
            opts.onProgress?.({ mode, rows: streamed, total, elapsedMs: performance.now() - t0 });
          });
        } catch (err) {
          failed = true; // the other connections stop after their current transaction
          throw err;
        }
        rows += group.reduce((n, g) => n + g.slice.quota, 0);
      }
    };
    await Promise.all(clients.map(worker));
    // PostgreSQL's advice after a bulk load: without fresh statistics the planner takes the table
    // for as small as before, and a range query that pages through it (the backfill's keyset
    // pages) sorts the whole remaining range for every page instead of walking the event_ts index.
    if (rows > 0 && !signal?.aborted) await client.query('ANALYZE engagement_events');
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  }
  return summary(mode, rows, engine.sessions, t0, seed, rows < total);
}

/** Groups consecutive slices into COPY transactions of at most about `maxRows` rows each. */
function* transactions(slices: readonly Slice[], maxRows: number): Generator<IndexedSlice[]> {
  let group: IndexedSlice[] = [];
  let rows = 0;
  for (const [index, slice] of slices.entries()) {
    if (group.length > 0 && rows + slice.quota > maxRows) {
      yield group;
      group = [];
      rows = 0;
    }
    group.push({ slice, index });
    rows += slice.quota;
  }
  if (group.length > 0) yield group;
}

function summary(
  mode: GenerateMode,
  rows: number,
  sessions: number,
  t0: number,
  seed: number | string,
  interrupted: boolean,
): GenerateSummary {
  const seconds = (performance.now() - t0) / 1000;
  return { mode, rows, sessions, seconds, rowsPerSecond: seconds > 0 ? rows / seconds : 0, seed, interrupted };
}

/** Exactly `batchSize` events, timestamps spread over the last `windowMinutes` (default 10). */
export async function generateBatch(
  config: DbConfig,
  opts: BatchOptions,
  signal?: AbortSignal,
): Promise<GenerateSummary> {
  positiveInt('--batch-size', opts.batchSize);
  const windowMs = (opts.windowMinutes ?? 10) * MINUTE_MS;
  return writeSlices('batch', config, opts, (now) => batchSlices(now, windowMs, opts.batchSize, SLICE_ROWS), signal);
}

/** Exactly `eventsPerDay` events for each of the last `days` days, with a daily rhythm. */
export async function generateHistorical(
  config: DbConfig,
  opts: HistoricalOptions,
  signal?: AbortSignal,
): Promise<GenerateSummary> {
  positiveInt('--historical-days', opts.days);
  const perDay = opts.eventsPerDay ?? 10_000;
  positiveInt('--events-per-day', perDay);
  return writeSlices('historical', config, opts, (now) => historicalSlices(now, opts.days, perDay, SLICE_ROWS), signal);
}

/** The earliest timestamp a historical run of `days` days anchored at `nowMs` produces. */
export function historicalStart(nowMs: number, days: number): number {
  return nowMs - days * DAY_MS;
}

/**
 * Live events at `rate` per second, stamped with the clock, each tick's events in one COPY.
 * Runs until `signal` aborts or, with `durationSeconds`, until floor(rate × duration) events exist.
 * When the database is slower than the rate, it catches up with larger ticks (capped) rather than
 * dropping events.
 */
export async function runContinuous(
  config: DbConfig,
  opts: ContinuousOptions = {},
  signal?: AbortSignal,
): Promise<GenerateSummary> {
  const rate = opts.rate ?? 10;
  if (!(rate > 0) || !Number.isFinite(rate))
    throw new PipelineError('USAGE', `--rate must be a number above 0 (got ${rate})`);
  if (opts.durationSeconds !== undefined && !(opts.durationSeconds > 0)) {
    throw new PipelineError('USAGE', `--duration must be a number of seconds above 0 (got ${opts.durationSeconds})`);
  }
  const { client, engine, seed } = await prepare(config, opts);
  const live = engine.live(opts.concurrency ?? Math.max(8, Math.min(500, Math.round(rate * 3))));
  const target =
    opts.durationSeconds === undefined ? Number.POSITIVE_INFINITY : Math.floor(rate * opts.durationSeconds);
  const tickMs = Math.max(20, Math.min(1000, 1000 / rate));
  const maxPerTick = Math.max(1000, Math.ceil(rate));
  const t0 = performance.now();
  const wall0 = Date.now();
  let rows = 0;
  try {
    while (rows < target && !signal?.aborted) {
      const elapsed = performance.now() - t0;
      const due = Math.min(target, Math.floor((rate * elapsed) / 1000)) - rows;
      const n = Math.min(due, maxPerTick);
      if (n > 0) {
        // Spread the tick's events over the interval they were due in, in order.
        const to = Math.min(Date.now(), wall0 + ((rows + n) / rate) * 1000);
        const from = Math.min(to, wall0 + (rows / rate) * 1000);
        const batch: GeneratedEvent[] = [];
        for (let i = 0; i < n; i++) batch.push(live.next(Math.round(from + ((to - from) * i) / n)));
        await copyEvents(client, [batch]);
        rows += n;
        opts.onProgress?.({
          mode: 'continuous',
          rows,
          total: Number.isFinite(target) ? target : undefined,
          elapsedMs: performance.now() - t0,
        });
      }
      if (rows >= target) break;
      const nextDueMs = ((rows + 1) / rate) * 1000 - (performance.now() - t0);
      try {
        await sleep(Math.max(1, Math.min(tickMs, nextDueMs)), undefined, { signal });
      } catch {
        break; // aborted
      }
    }
  } finally {
    await client.end().catch(() => undefined);
  }
  return summary('continuous', rows, engine.sessions, t0, seed, rows < target && Number.isFinite(target));
}
