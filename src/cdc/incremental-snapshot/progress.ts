/**
 * What an incremental snapshot has done and still has to do, as it travels in the CDC's position
 * record (`CdcPosition.incremental`, position-store.ts) — in the same Kafka transaction as the
 * chunk's records, so a restart resumes at the chunk after the last committed one — and the
 * signal that asks for one (`engage cdc snapshot`, a logical message in the WAL).
 *
 * Contract: `tasks[0]` is the table being read; `last_key` the primary key (PostgreSQL text values,
 * key order) of the last row the committed chunks read, null before the first chunk; `max_key` the
 * table's largest key when its first chunk was read (rows above it are new: the stream carries
 * them). A task whose chunk came back short is finished and leaves the list.
 */

/** One table (optionally a subset: `where`) to read in chunks. */
export interface SnapshotTask {
  /** The snapshot (signal) this task belongs to: `initial` for the first start's. */
  id: string;
  /** `schema.table`. */
  table: string;
  /** An extra SQL condition on the table's rows (`engage cdc snapshot --where`), or null. */
  where: string | null;
  last_key: string[] | null;
  max_key: string[] | null;
  /** Chunks committed. */
  chunk: number;
  /** Rows emitted (after the stream won its rows). */
  rows: number;
  /** Rows the table held by PostgreSQL's estimate (pg_class.reltuples) when the task began. */
  rows_estimate: number | null;
  started_at_ms: number;
}

export interface IncrementalProgress {
  tasks: SnapshotTask[];
  /** Rows and chunks emitted by every task since the progress began. */
  rows: number;
  chunks: number;
  last_completed: { id: string; table: string; rows: number; completed_at_ms: number } | null;
}

/** The logical-message prefixes (pg_logical_emit_message) the CDC writes and reads. */
export const WATERMARK_PREFIX = 'engage-cdc-snapshot-watermark';
export const SIGNAL_PREFIX = 'engage-cdc-signal';

/** Tables an incremental snapshot may read, in the order a whole-database snapshot reads them. */
export const SNAPSHOT_TABLES = ['public.content', 'public.engagement_events'] as const;

export function emptyProgress(): IncrementalProgress {
  return { tasks: [], rows: 0, chunks: 0, last_completed: null };
}

export function newTask(id: string, table: string, where: string | null, now = Date.now()): SnapshotTask {
  return {
    id,
    table,
    where,
    last_key: null,
    max_key: null,
    chunk: 0,
    rows: 0,
    rows_estimate: null,
    started_at_ms: now,
  };
}

/** `engagement_events` → `public.engagement_events`; a qualified name is kept. */
export function qualifyTable(table: string): string {
  return table.includes('.') ? table : `public.${table}`;
}

/** Debezium's execute-snapshot signal, as the CDC reads it from a logical message. */
export interface SnapshotSignal {
  id: string;
  type: 'execute-snapshot';
  data: {
    'data-collections': string[];
    type: 'incremental';
    'additional-conditions'?: Array<{ 'data-collection': string; filter: string }>;
  };
}

export function snapshotSignal(id: string, tables: string[], where: string | null): SnapshotSignal {
  const collections = tables.map(qualifyTable);
  return {
    id,
    type: 'execute-snapshot',
    data: {
      'data-collections': collections,
      type: 'incremental',
      ...(where ? { 'additional-conditions': collections.map((t) => ({ 'data-collection': t, filter: where })) } : {}),
    },
  };
}

/** The tasks a signal asks for, or a reason to ignore it. */
export function tasksOfSignal(text: string, now = Date.now()): SnapshotTask[] | { ignored: string } {
  let parsed: Partial<SnapshotSignal>;
  try {
    parsed = JSON.parse(text) as Partial<SnapshotSignal>;
  } catch {
    return { ignored: 'not JSON' };
  }
  if (parsed.type !== 'execute-snapshot') return { ignored: `signal type ${String(parsed.type)} not supported` };
  const tables = parsed.data?.['data-collections'];
  if (!Array.isArray(tables) || tables.length === 0) return { ignored: 'no data-collections' };
  const unknown = tables.filter((t) => !(SNAPSHOT_TABLES as readonly string[]).includes(qualifyTable(String(t))));
  if (unknown.length > 0) return { ignored: `not captured: ${unknown.join(', ')}` };
  const id = typeof parsed.id === 'string' && parsed.id !== '' ? parsed.id : `signal-${now}`;
  const conditions = parsed.data?.['additional-conditions'] ?? [];
  return tables.map((t) => {
    const table = qualifyTable(String(t));
    const where = conditions.find((c) => qualifyTable(c['data-collection']) === table)?.filter ?? null;
    return newTask(id, table, where, now);
  });
}

/** The watermark message's content: the snapshotter run (one per session), chunk and kind. */
export interface Watermark {
  run: string;
  chunk: number;
  kind: 'low' | 'high';
}

export function parseWatermark(text: string): Watermark | null {
  try {
    const w = JSON.parse(text) as Partial<Watermark>;
    if (typeof w.run === 'string' && typeof w.chunk === 'number' && (w.kind === 'low' || w.kind === 'high'))
      return { run: w.run, chunk: w.chunk, kind: w.kind };
  } catch {
    // not ours
  }
  return null;
}

/** What the status, the metrics and `engage cdc snapshot --follow` show of a running snapshot. */
export interface SnapshotProgressView {
  id: string;
  table: string;
  chunk: number;
  rows: number;
  rows_estimate: number | null;
  rows_per_second: number | null;
  eta_seconds: number | null;
  tables_remaining: string[];
}

/** The view of `progress` at `now` (rate over the current task's life). */
export function progressView(progress: IncrementalProgress, now = Date.now()): SnapshotProgressView | null {
  const task = progress.tasks[0];
  if (!task) return null;
  const secs = (now - task.started_at_ms) / 1000;
  const rate = secs > 0 && task.rows > 0 ? task.rows / secs : null;
  const left = task.rows_estimate === null ? null : Math.max(0, task.rows_estimate - task.rows);
  return {
    id: task.id,
    table: task.table,
    chunk: task.chunk,
    rows: task.rows,
    rows_estimate: task.rows_estimate,
    rows_per_second: rate === null ? null : Math.round(rate),
    eta_seconds: rate === null || left === null ? null : Math.round(left / rate),
    tables_remaining: progress.tasks.slice(1).map((t) => t.table),
  };
}
