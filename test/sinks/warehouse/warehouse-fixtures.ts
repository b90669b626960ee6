import { rmSync } from 'node:fs';
import path from 'node:path';
import { after, before } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import type { Config } from '../../../src/config/load.js';
import { createLogger } from '../../../src/core/logger.js';
import type { EnrichedEvent } from '../../../src/core/types.js';
import type { SinkBatch, SinkContext } from '../../../src/core/sink-contract.js';
import { DuckDbWarehouse } from '../../../src/sinks/warehouse/duckdb/duckdb-warehouse.js';
import { createTestEnv, type TestEnv } from '../../helpers/env.js';

/**
 * Fixtures of the warehouse tests: deterministic enriched events, batches, a hand-computed data
 * set for the views, and a reader of a DuckDB file (through DuckDB's in-process instance cache, so
 * it can read while the sink holds the file).
 */

export const log = createLogger(process.env.LOG_LEVEL ?? 'error', 'warehouse-test');

export function ctxOf(config: Config): SinkContext {
  return { config, log };
}

/**
 * For a test file on real DuckDB files: registers an isolated test env, created before the file's
 * tests and removed after them (its folder too). `fresh()` is a config naming a new file in a
 * not-yet-existing folder of that env's directory.
 */
export function duckdbFiles(): { env(): TestEnv; fresh(): Config } {
  let env: TestEnv | undefined;
  let n = 0;
  before(async () => {
    env = await createTestEnv();
  });
  after(async () => {
    if (!env) return;
    await env.cleanup();
    rmSync(path.dirname(env.config.DUCKDB_PATH), { recursive: true, force: true });
  });
  const current = (): TestEnv => {
    if (!env) throw new Error('duckdbFiles: used before its test env was created');
    return env;
  };
  return {
    env: current,
    fresh: () => {
      const { config } = current();
      return {
        ...config,
        DUCKDB_PATH: path.join(path.dirname(config.DUCKDB_PATH), `case-${++n}`, 'nested', 'warehouse.duckdb'),
      };
    },
  };
}

export const CONTENT = {
  A: { id: '00000000-0000-4000-8000-00000000000a', slug: 'alpha', title: 'Alpha', type: 'podcast', length: 600 },
  B: { id: '00000000-0000-4000-8000-00000000000b', slug: 'bravo', title: 'Bravo', type: 'video', length: 300 },
  C: { id: '00000000-0000-4000-8000-00000000000c', slug: 'charlie', title: 'Charlie', type: null, length: null },
} as const;

type ContentKey = keyof typeof CONTENT;

/** An enriched event as the processor makes it (engagement computed, date and hour derived). */
export function whEvent(
  id: number | string,
  content: ContentKey,
  userId: string | null,
  type: EnrichedEvent['event_type'],
  ts: string,
  durationMs: number | null,
  extra: Partial<EnrichedEvent> = {},
): EnrichedEvent {
  const c = CONTENT[content];
  const seconds = durationMs === null ? null : durationMs / 1000;
  return {
    schema_version: 1,
    event_id: String(id),
    content_id: c.id,
    user_id: userId,
    event_type: type,
    event_ts: ts,
    duration_ms: durationMs,
    device: 'ios',
    raw_payload: { session: `s-${id}`, nested: { ok: true } },
    extra: {},
    content_slug: c.slug,
    content_title: c.title,
    content_type: c.type,
    length_seconds: c.length,
    publish_ts: '2024-01-01T00:00:00.000Z',
    engagement_seconds: seconds,
    engagement_pct: seconds === null || c.length === null ? null : (seconds / c.length) * 100,
    event_date: ts.slice(0, 10),
    event_hour: `${ts.slice(0, 13)}:00:00.000Z`,
    source_ts_ms: 1709287200000,
    processed_ts_ms: 1709287200500,
    origin: 'stream',
    quality_flags: durationMs === null ? ['missing_duration'] : [],
    ...extra,
  };
}

export function batchOf(topic: string, partition: number, events: EnrichedEvent[], firstOffset: number): SinkBatch {
  return {
    topic,
    partition,
    records: events.map((event, i) => ({
      topic,
      partition,
      offset: String(firstOffset + i),
      key: event.content_id,
      event,
    })),
    nextOffset: String(firstOffset + events.length),
  };
}

/**
 * The views' data set. Hand-computed figures below; A's title changes in event 107 (enriched
 * later), so content_dim — and the daily view on both dates — shows 'Alpha v2'.
 */
export const KNOWN_EVENTS: EnrichedEvent[] = [
  whEvent(101, 'A', 'u1', 'play', '2024-03-01T10:15:00.000Z', 60000),
  whEvent(102, 'A', 'u1', 'finish', '2024-03-01T10:45:00.000Z', 600000),
  whEvent(103, 'A', 'u2', 'play', '2024-03-01T11:05:00.000Z', 30000),
  whEvent(104, 'A', 'u2', 'pause', '2024-03-01T11:06:00.000Z', null),
  whEvent(105, 'B', 'u1', 'play', '2024-03-01T10:20:00.000Z', 150000),
  whEvent(106, 'B', null, 'click', '2024-03-01T10:30:00.000Z', null),
  whEvent(107, 'A', 'u3', 'play', '2024-03-02T00:10:00.000Z', 120000, {
    content_title: 'Alpha v2',
    processed_ts_ms: 1709338000000,
  }),
  whEvent(108, 'C', 'u1', 'play', '2024-03-02T00:30:00.000Z', 5000),
  whEvent(109, 'B', 'u4', 'finish', '2024-03-02T01:00:00.000Z', 300000),
];

/** daily_engagement_summary for KNOWN_EVENTS, ordered by event_date, content_slug. */
export const EXPECTED_DAILY = [
  {
    event_date: '2024-03-01',
    content_slug: 'alpha',
    content_title: 'Alpha v2',
    content_type: 'podcast',
    total_events: 4,
    plays: 2,
    pauses: 1,
    finishes: 1,
    clicks: 0,
    unique_users: 2,
    total_engagement_seconds: 690,
    avg_engagement_seconds: 230,
    avg_engagement_pct: 115 / 3,
    completion_rate: 0.5,
  },
  {
    event_date: '2024-03-01',
    content_slug: 'bravo',
    content_title: 'Bravo',
    content_type: 'video',
    total_events: 2,
    plays: 1,
    pauses: 0,
    finishes: 0,
    clicks: 1,
    unique_users: 1,
    total_engagement_seconds: 150,
    avg_engagement_seconds: 150,
    avg_engagement_pct: 50,
    completion_rate: 0,
  },
  {
    event_date: '2024-03-02',
    content_slug: 'alpha',
    content_title: 'Alpha v2',
    content_type: 'podcast',
    total_events: 1,
    plays: 1,
    pauses: 0,
    finishes: 0,
    clicks: 0,
    unique_users: 1,
    total_engagement_seconds: 120,
    avg_engagement_seconds: 120,
    avg_engagement_pct: 20,
    completion_rate: 0,
  },
  {
    event_date: '2024-03-02',
    content_slug: 'bravo',
    content_title: 'Bravo',
    content_type: 'video',
    total_events: 1,
    plays: 0,
    pauses: 0,
    finishes: 1,
    clicks: 0,
    unique_users: 1,
    total_engagement_seconds: 300,
    avg_engagement_seconds: 300,
    avg_engagement_pct: 100,
    completion_rate: null,
  },
  {
    event_date: '2024-03-02',
    content_slug: 'charlie',
    content_title: 'Charlie',
    content_type: null,
    total_events: 1,
    plays: 1,
    pauses: 0,
    finishes: 0,
    clicks: 0,
    unique_users: 1,
    total_engagement_seconds: 5,
    avg_engagement_seconds: 5,
    avg_engagement_pct: null,
    completion_rate: 0,
  },
];

/** hourly_engagement_trends for KNOWN_EVENTS, ordered by hour_bucket, content_type. */
export const EXPECTED_HOURLY = [
  {
    hour_bucket: '2024-03-01T10:00:00.000Z',
    event_date: '2024-03-01',
    content_type: 'podcast',
    total_events: 2,
    unique_users: 1,
    unique_content: 1,
    plays: 1,
    finishes: 1,
    total_engagement_seconds: 660,
    avg_engagement_seconds: 330,
    avg_engagement_pct: 55,
  },
  {
    hour_bucket: '2024-03-01T10:00:00.000Z',
    event_date: '2024-03-01',
    content_type: 'video',
    total_events: 2,
    unique_users: 1,
    unique_content: 1,
    plays: 1,
    finishes: 0,
    total_engagement_seconds: 150,
    avg_engagement_seconds: 150,
    avg_engagement_pct: 50,
  },
  {
    hour_bucket: '2024-03-01T11:00:00.000Z',
    event_date: '2024-03-01',
    content_type: 'podcast',
    total_events: 2,
    unique_users: 1,
    unique_content: 1,
    plays: 1,
    finishes: 0,
    total_engagement_seconds: 30,
    avg_engagement_seconds: 30,
    avg_engagement_pct: 5,
  },
  {
    hour_bucket: '2024-03-02T00:00:00.000Z',
    event_date: '2024-03-02',
    content_type: 'podcast',
    total_events: 1,
    unique_users: 1,
    unique_content: 1,
    plays: 1,
    finishes: 0,
    total_engagement_seconds: 120,
    avg_engagement_seconds: 120,
    avg_engagement_pct: 20,
  },
  {
    hour_bucket: '2024-03-02T00:00:00.000Z',
    event_date: '2024-03-02',
    content_type: 'unknown',
    total_events: 1,
    unique_users: 1,
    unique_content: 1,
    plays: 1,
    finishes: 0,
    total_engagement_seconds: 5,
    avg_engagement_seconds: 5,
    avg_engagement_pct: null,
  },
  {
    hour_bucket: '2024-03-02T01:00:00.000Z',
    event_date: '2024-03-02',
    content_type: 'video',
    total_events: 1,
    unique_users: 1,
    unique_content: 1,
    plays: 0,
    finishes: 1,
    total_engagement_seconds: 300,
    avg_engagement_seconds: 300,
    avg_engagement_pct: 100,
  },
];

export type Plain = string | number | boolean | null | Plain[] | { [k: string]: Plain };

/** JS values from DuckDB made comparable: bigint → number, Date → ISO string. */
function plain(v: unknown): Plain {
  if (typeof v === 'bigint') return Number(v);
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v as Plain;
}

export interface DuckReader {
  rows(sql: string): Promise<Array<Record<string, Plain>>>;
  close(): void;
}

/** Opens the file through the instance cache (shared with a sink of this process). */
export async function openReader(file: string): Promise<DuckReader> {
  const instance = await DuckDBInstance.fromCache(file);
  const conn = await instance.connect();
  await conn.run(`SET TimeZone = 'UTC'`);
  return {
    async rows(sql: string) {
      const reader = await conn.runAndReadAll(sql);
      return reader.getRowObjectsJS().map((r) => plain(r) as Record<string, Plain>);
    },
    close() {
      conn.closeSync();
      instance.closeSync();
    },
  };
}

/** A started DuckDB warehouse on the config's file (from `duckdbFiles().fresh()`). */
export async function startedWarehouse(config: Config): Promise<{ sink: DuckDbWarehouse; file: string }> {
  const sink = new DuckDbWarehouse(ctxOf(config));
  await sink.start();
  return { sink, file: config.DUCKDB_PATH };
}

/** How many fact rows of the DuckDB file `file` match the SQL condition `where`. */
export async function factCount(file: string, where = 'true'): Promise<number> {
  const r = await openReader(file);
  try {
    const [row] = await r.rows(`SELECT count(*) AS n FROM engagement_events_enriched WHERE ${where}`);
    return Number(row?.n);
  } finally {
    r.close();
  }
}

/**
 * Every stored row of the three tables as text (JSON columns parsed), but the write times: what
 * two ways of writing the warehouse must agree on.
 */
export async function dumpWarehouse(file: string): Promise<Record<string, unknown>> {
  const r = await openReader(file);
  try {
    const facts = (
      await r.rows(`SELECT COLUMNS(* EXCLUDE (loaded_at))::VARCHAR FROM engagement_events_enriched ORDER BY event_id`)
    ).map((row) => ({
      ...row,
      raw_payload: row.raw_payload === null ? null : JSON.parse(String(row.raw_payload)),
      extra: row.extra === null ? null : JSON.parse(String(row.extra)),
    }));
    return {
      facts,
      content: await r.rows(`SELECT COLUMNS(* EXCLUDE (updated_at))::VARCHAR FROM content_dim ORDER BY content_id`),
      offsets: await r.rows(
        `SELECT COLUMNS(* EXCLUDE (updated_at))::VARCHAR FROM warehouse_offsets ORDER BY topic, kafka_partition`,
      ),
    };
  } finally {
    r.close();
  }
}

/** Numbers compared with a tolerance (averages are floats). */
export function approxEqualRows(
  actual: Array<Record<string, Plain>>,
  expected: Array<Record<string, Plain>>,
): string | null {
  if (actual.length !== expected.length)
    return `expected ${expected.length} rows, got ${actual.length}: ${JSON.stringify(actual)}`;
  for (let i = 0; i < expected.length; i++) {
    for (const [k, want] of Object.entries(expected[i] ?? {})) {
      const got = actual[i]?.[k];
      const ok =
        typeof want === 'number' && typeof got === 'number'
          ? Math.abs(want - got) < 1e-9
          : JSON.stringify(got) === JSON.stringify(want);
      if (!ok)
        return `row ${i} ${k}: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)} (row ${JSON.stringify(actual[i])})`;
    }
  }
  return null;
}
