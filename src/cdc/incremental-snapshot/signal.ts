import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Config } from '../../config/load.js';
import { PipelineError } from '../../core/errors.js';
import { sleep } from '../../core/sleep.js';
import { pgClientConfig } from '../pg-control.js';
import { readLastPosition } from '../position-store.js';
import { qualified } from './chunk-reader.js';
import {
  SIGNAL_PREFIX,
  SNAPSHOT_TABLES,
  progressView,
  qualifyTable,
  snapshotSignal,
  type SnapshotProgressView,
} from './progress.js';

/**
 * `engage cdc snapshot`: Debezium's ad-hoc execute-snapshot signal, sent through the WAL as a
 * transactional logical message (prefix SIGNAL_PREFIX) rather than a signal table: it reaches the
 * CDC in commit order, in the stream it already reads, and needs nothing created in the database.
 * The running `engage cdc` takes it when its transaction is written (snapshotter.ts), and its
 * position record carries the new tasks from then on — a signal is acted on once, even across a
 * crash. Also follows a snapshot's progress by reading the committed position.
 *
 * Contract: the tables must be captured ones; a `where` condition is checked by PostgreSQL before
 * the signal is sent (`SELECT … WHERE (<where>) LIMIT 0`), so a typo is refused here, not in the
 * CDC. The condition is SQL written by the operator and runs as the CDC's database user.
 */

export async function sendSnapshotSignal(
  config: Config,
  tables: string[],
  where: string | null,
): Promise<{ id: string; tables: string[] }> {
  const names = tables.map(qualifyTable);
  const unknown = names.filter((t) => !(SNAPSHOT_TABLES as readonly string[]).includes(t));
  if (unknown.length > 0 || names.length === 0) {
    throw new PipelineError(
      'USAGE',
      `--table accepts ${SNAPSHOT_TABLES.map((t) => t.replace('public.', '')).join(' or ')}, not ${unknown.join(', ') || 'nothing'}`,
      { retriable: false },
    );
  }
  const id = `snapshot-${new Date().toISOString().replace(/[:.]/g, '-')}-${randomBytes(2).toString('hex')}`;
  const client = new pg.Client(pgClientConfig(config.databaseUrl, 'engage-cdc-signal'));
  await client.connect();
  try {
    if (where !== null) {
      for (const t of names) {
        await client.query(`SELECT 1 FROM ${qualified(t)} WHERE (${where}) LIMIT 0`).catch((err: unknown) => {
          throw new PipelineError('USAGE', `--where is refused by PostgreSQL on ${t}: ${String(err)}`, {
            retriable: false,
          });
        });
      }
    }
    await client.query('SELECT pg_logical_emit_message(true, $1, $2)', [
      SIGNAL_PREFIX,
      JSON.stringify(snapshotSignal(id, names, where)),
    ]);
  } finally {
    await client.end().catch(() => undefined);
  }
  return { id, tables: names };
}

/** One look at a requested snapshot: running (with its view), waiting behind others, or done. */
export type FollowState =
  { state: 'waiting' } | { state: 'running'; view: SnapshotProgressView } | { state: 'done'; rows: number };

/**
 * Polls the committed position every `everyMs` and reports snapshot `id`'s progress until its
 * last table is read (or `signal` aborts). "waiting" also covers a signal the CDC has not reached
 * yet (it is not streaming, or is behind).
 */
export async function followSnapshot(
  config: Config,
  id: string,
  report: (s: FollowState) => void,
  everyMs = 2000,
  signal?: AbortSignal,
): Promise<void> {
  let seen = false;
  let doneRows = 0;
  for (;;) {
    const position = await readLastPosition(
      config,
      config.KAFKA_CLIENT_ID,
      config.KAFKA_TOPIC_CDC_POSITION,
      config.CDC_SLOT_NAME,
    );
    const progress = position?.incremental ?? null;
    const mine = progress?.tasks.filter((t) => t.id === id) ?? [];
    if (mine.length > 0) seen = true;
    if (progress?.last_completed?.id === id) doneRows = progress.last_completed.rows;
    const head = progress?.tasks[0];
    if (seen && mine.length === 0) return report({ state: 'done', rows: doneRows });
    if (progress && head?.id === id) {
      const view = progressView(progress);
      if (view) report({ state: 'running', view });
    } else report({ state: 'waiting' });
    await sleep(everyMs, signal);
  }
}
