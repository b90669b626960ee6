import { randomBytes } from 'node:crypto';
import { PipelineError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { Pseudonymiser } from '../../core/pseudonym.js';
import { sleep } from '../../core/sleep.js';
import { CDC_VERSION, emitChange, routeFor, sourcePrefix, type Emit, type TopicRoutes } from '../envelope.js';
import type { RenderTxn } from '../change-renderer.js';
import type { SnapshotLayout } from '../snapshot.js';
import { lsnTextToNumber } from '../lsn.js';
import { ChunkReader, type Chunk } from './chunk-reader.js';
import {
  SIGNAL_PREFIX,
  WATERMARK_PREFIX,
  emptyProgress,
  parseWatermark,
  progressView,
  tasksOfSignal,
  type IncrementalProgress,
  type SnapshotProgressView,
  type SnapshotTask,
} from './progress.js';
import { WatermarkWindow } from './watermark-window.js';

/**
 * The incremental snapshot of one CDC session: reads the pending tasks' chunks (chunk-reader.ts)
 * in the background while the session streams, and — as the ChangePipeline's StreamTap — sees the
 * stream in order: the transactions' keys (for the watermark window), the watermarks, and the
 * snapshot signals (`engage cdc snapshot`).
 *
 * Contract:
 * - chunks are read one after the other, each L, read, H — the next chunk's L only once the
 *   previous chunk's H has committed, so in the WAL (and the stream) the windows never overlap:
 *   L1 H1 L2 H2 …, and the window (watermark-window.ts) settles them one at a time, as if read
 *   alone. Reading does not wait for the stream, though, up to READ_AHEAD chunks: the next chunk
 *   is read (after the last key of the one before it) while the stream still carries the one
 *   before to its H;
 * - at H the chunk's rows the stream does not win are emitted as `op: "r"`, `source.snapshot:
 *   "incremental"`, inside H's transaction, and the task's progress moves on in the same step —
 *   so `progress()`, which the pipeline puts in the position record of its next Kafka commit,
 *   always describes exactly the chunks whose records precede that commit. A chunk read ahead is
 *   emitted only if the progress, at its H, stands where the chunk was read from (same task,
 *   chunk number and last key); otherwise (the chunk before it was not written: its window was
 *   unknown) it is dropped, and reading starts over from the progress;
 * - a signal in a transaction being written adds its tasks in that same step (its position
 *   record carries them: a signal is taken once, even across a crash);
 * - the read rate stays under `maxRowsPerSecond` (0: unbounded) by pausing between chunks;
 * - a failure goes to `onFail` (the session then starts over from the committed position); a task
 *   whose `--where` condition PostgreSQL refuses is dropped with an error log instead.
 */

export interface SnapshotterOptions {
  url: string;
  slot: string;
  serverName: string;
  db: string;
  routes: TopicRoutes;
  chunkRows: number;
  maxRowsPerSecond: number;
  resumeFrom: IncrementalProgress | null;
  /** Told of a chunk's columns before its rows are emitted (KAFKA_VALUE_FORMAT=avro registers them). */
  onColumns?(topic: string, layout: SnapshotLayout): Promise<void>;
  /** The tagged columns' pseudonyms (PII_FIELDS; absent: values as they are). */
  pii?: Pseudonymiser;
  /** PostgreSQL computes them in the chunk reads (CDC_SNAPSHOT_PSEUDONYMS=postgres; chunk-reader.ts). */
  pseudonymsInPostgres: boolean;
  log: Logger;
  onProgress(view: SnapshotProgressView | null): void;
  onFail(err: unknown): void;
}

/** What the ChangePipeline tells a tap of the stream, in stream order (change-pipeline.ts). */
export interface StreamTap {
  begin(xid: number): void;
  /** A record the stream writes for the current transaction (not the tap's own records). */
  record(topic: string, key: string | null): void;
  end(): void;
  /** A logical message inside a transaction being written; records emitted now go with it. */
  message(prefix: string, content: string, lsn: string, txn: RenderTxn, emit: Emit): void;
  /** The snapshot progress the next position record carries. */
  progress(): IncrementalProgress;
  /** Snapshot rows emitted since the last call, keyed `table|r`. */
  takeCounts(): Map<string, number>;
}

/** Chunks read but not yet written (their H not reached in the stream) at most. */
export const READ_AHEAD = 2;

interface PendingChunk {
  n: number;
  /** Where it was read from: the task (id, table), its chunk number and the key it was read after. */
  taskId: string;
  table: string;
  index: number;
  from: string[] | null;
  /** Set once read (before its H is written). */
  chunk: Chunk | undefined;
  /** Settles once the stream passed its H: true if its rows were written and the progress moved on. */
  handled: Promise<boolean>;
  done(applied: boolean): void;
}

export class Snapshotter implements StreamTap {
  private readonly state: IncrementalProgress;
  private readonly run = randomBytes(4).toString('hex');
  private readonly window = new WatermarkWindow();
  private readonly abort = new AbortController();
  private reader: ChunkReader | undefined;
  /** Chunks whose L has been (or is being) written and whose H the stream has not reached, in WAL order. */
  private pending: PendingChunk[] = [];
  /** A chunk was not written: the chunks read after it are dropped at their H, and reading starts over. */
  private resync = false;
  private seq = 0;
  /** The topic of the table being read (its keys feed the window). */
  private topic: string | undefined;
  private counts = new Map<string, number>();
  private wake: (() => void) | null = null;
  private loop: Promise<void> = Promise.resolve();
  /** Where the current table's reading time went (ms), logged when it is read: the chunk reads
   *  (COPY, parse, render), the two watermark commits, and the waits for the stream to reach the
   *  oldest chunk's H (the reader READ_AHEAD chunks ahead, or at a table's end). */
  private spent = { select_ms: 0, watermarks_ms: 0, wait_stream_ms: 0 };

  constructor(private readonly o: SnapshotterOptions) {
    this.state = o.resumeFrom ? structuredClone(o.resumeFrom) : emptyProgress();
  }

  start(): void {
    if (this.state.tasks[0]) {
      const t = this.state.tasks[0];
      this.o.log.info(
        { id: t.id, table: t.table, chunk: t.chunk, rows: t.rows, last_key: t.last_key },
        t.chunk > 0
          ? 'incremental snapshot: resuming after the last committed chunk'
          : 'incremental snapshot: starting',
      );
    }
    this.loop = this.runChunks().catch((err: unknown) => {
      if (!this.abort.signal.aborted) this.o.onFail(err);
    });
    this.o.onProgress(progressView(this.state));
  }

  async stop(): Promise<void> {
    this.abort.abort(new Error('stopping'));
    this.wake?.();
    for (const p of this.pending.splice(0)) p.done(false);
    await this.loop;
    await this.reader?.close();
  }

  progress(): IncrementalProgress {
    return structuredClone(this.state);
  }

  takeCounts(): Map<string, number> {
    const c = this.counts;
    this.counts = new Map();
    return c;
  }

  begin(xid: number): void {
    if (this.topic !== undefined) this.window.begin(xid);
  }

  record(topic: string, key: string | null): void {
    if (topic === this.topic) this.window.touch(key);
  }

  end(): void {
    if (this.topic !== undefined) this.window.end();
  }

  message(prefix: string, content: string, lsn: string, txn: RenderTxn, emit: Emit): void {
    if (prefix === SIGNAL_PREFIX) return this.signal(content);
    if (prefix !== WATERMARK_PREFIX) return;
    const w = parseWatermark(content);
    if (!w || w.run !== this.run) return; // another session's, or replayed
    // A later chunk's watermark: an earlier chunk's H was not seen (not expected: every transaction
    // after the session's start is written), so that chunk is not written either.
    while (this.pending[0] && this.pending[0].n < w.chunk) this.settle(this.pending.shift() as PendingChunk, false);
    const p = this.pending[0];
    if (!p || w.chunk !== p.n) return;
    if (w.kind === 'low') {
      this.window.low();
      return;
    }
    this.pending.shift();
    const chunk = p.chunk;
    const result = chunk ? this.window.high(chunk.rows, chunk.snapshot) : null;
    const task = this.state.tasks[0];
    const current =
      task !== undefined &&
      task.id === p.taskId &&
      task.table === p.table &&
      task.chunk === p.index &&
      sameKey(task.last_key, p.from);
    // window unknown, or read after a chunk that was not written: read again from the progress
    if (!result || !chunk || !task || !current || this.topic === undefined) return this.settle(p, false);
    const [schema = 'public', table = task.table] = task.table.split('.');
    const prefixJson = sourcePrefix({
      version: CDC_VERSION,
      connector: 'postgresql',
      name: this.o.serverName,
      ts_ms: txn.commitMs,
      snapshot: 'incremental',
      db: this.o.db,
      schema,
      table,
      txId: null,
    });
    const at = {
      prefix: prefixJson,
      lsn: lsnTextToNumber(lsn),
      sequence: `["${txn.finalLsnText}","${lsnTextToNumber(lsn)}"]`,
    };
    const now = Date.now();
    for (const row of result.kept) emitChange(emit, this.topic, row.key, 'r', 'null', row.after, at, now);
    const kept = result.kept.length;
    this.counts.set(`${table}|r`, (this.counts.get(`${table}|r`) ?? 0) + kept);
    task.chunk++;
    task.rows += kept;
    task.last_key = chunk.lastKey;
    task.max_key = chunk.maxKey;
    task.rows_estimate = chunk.rowsEstimate;
    this.state.rows += kept;
    this.state.chunks++;
    if (result.dropped > 0)
      this.o.log.debug({ table: task.table, chunk: task.chunk, dropped: result.dropped }, 'chunk rows the stream won');
    if (chunk.last) {
      this.state.tasks.shift();
      this.state.last_completed = { id: task.id, table: task.table, rows: task.rows, completed_at_ms: now };
      this.o.log.info(
        { id: task.id, table: task.table, rows: task.rows, chunks: task.chunk, ...this.spent },
        'incremental snapshot: table read',
      );
      this.spent = { select_ms: 0, watermarks_ms: 0, wait_stream_ms: 0 };
      this.selectTable();
    }
    this.o.onProgress(progressView(this.state));
    p.done(true);
  }

  /** A chunk that is not written: the reader starts over from the progress. */
  private settle(p: PendingChunk, applied: boolean): void {
    if (!applied) this.resync = true;
    p.done(applied);
  }

  private signal(content: string): void {
    const tasks = tasksOfSignal(content);
    if (!Array.isArray(tasks)) {
      this.o.log.warn({ signal: content.slice(0, 500), reason: tasks.ignored }, 'snapshot signal ignored');
      return;
    }
    this.state.tasks.push(...tasks);
    this.o.log.info({ id: tasks[0]?.id, tables: tasks.map((t) => t.table) }, 'incremental snapshot requested (signal)');
    if (this.topic === undefined) this.selectTable();
    this.o.onProgress(progressView(this.state));
    this.wake?.();
  }

  /** The window follows the table at the head of the tasks. */
  private selectTable(): void {
    this.window.reset();
    const task = this.state.tasks[0];
    const [schema = 'public', table = ''] = task ? task.table.split('.') : [];
    this.topic = task ? routeFor(this.o.routes, schema, table) : undefined;
  }

  private async runChunks(): Promise<void> {
    const signal = this.abort.signal;
    this.selectTable();
    /** Where the next read starts: the head task's progress, moved on by the chunks read ahead. */
    let cursor: SnapshotTask | null = null;
    let lastStart = 0;
    while (!signal.aborted) {
      if (this.resync || this.pending.length >= READ_AHEAD) {
        // Wait for the stream: for every chunk read (a chunk was not written: the later ones are
        // dropped, and reading starts over), or for the oldest one (READ_AHEAD chunks read).
        const waitAt = Date.now();
        if (this.resync) {
          await Promise.all(this.pending.map((p) => p.handled));
          this.resync = false;
          cursor = null;
        } else await this.pending[0]?.handled;
        this.spent.wait_stream_ms += Date.now() - waitAt;
        continue;
      }
      const task = this.state.tasks[0];
      if (!task) {
        cursor = null;
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = null;
        continue;
      }
      if (this.topic === undefined) {
        this.o.log.error({ table: task.table }, 'incremental snapshot: the table has no topic; task dropped');
        this.state.tasks.shift();
        this.selectTable();
        continue;
      }
      if (cursor === null || cursor.id !== task.id || cursor.table !== task.table) cursor = structuredClone(task);
      const minMs =
        this.o.maxRowsPerSecond > 0 && lastStart > 0 ? (this.o.chunkRows / this.o.maxRowsPerSecond) * 1000 : 0;
      const pause = lastStart + minMs - Date.now();
      if (pause > 0) await sleep(pause, signal).catch(() => undefined);
      if (signal.aborted) break;
      this.reader ??= await ChunkReader.connect(this.o.url, this.o.slot, this.o.pii, this.o.pseudonymsInPostgres);
      const startedAt = (lastStart = Date.now());
      let done: (applied: boolean) => void = () => undefined;
      const handled = new Promise<boolean>((resolve) => (done = resolve));
      const p: PendingChunk = {
        n: ++this.seq,
        taskId: cursor.id,
        table: cursor.table,
        index: cursor.chunk,
        from: cursor.last_key,
        chunk: undefined,
        handled,
        done,
      };
      this.pending.push(p); // before L: the stream may reach L before the call returns
      await this.reader.watermark({ run: this.run, chunk: p.n, kind: 'low' });
      const selectAt = Date.now();
      this.spent.watermarks_ms += selectAt - startedAt;
      let chunk: Chunk;
      try {
        chunk = await this.reader.read(cursor, this.o.chunkRows);
      } catch (err) {
        this.pending = this.pending.filter((x) => x !== p);
        p.done(false);
        if (task.where !== null && /^(42|22)/.test(String((err as { code?: string }).code ?? ''))) {
          await Promise.all(this.pending.map((x) => x.handled));
          if (this.state.tasks[0] !== task) continue;
          this.o.log.error(
            { id: task.id, table: task.table, where: task.where, err: String(err) },
            'incremental snapshot: PostgreSQL refuses the condition; task dropped',
          );
          this.state.tasks.shift();
          this.selectTable();
          cursor = null;
          continue;
        }
        throw new PipelineError('SERVICE_UNREACHABLE', `incremental snapshot chunk: ${String(err)}`, {
          retriable: true,
          cause: err,
        });
      }
      p.chunk = chunk;
      if (chunk.rows.length > 0) {
        const [schema = 'public', table = task.table] = cursor.table.split('.');
        await this.o.onColumns?.(this.topic, { schema, table, ...chunk.layout });
      }
      const highAt = Date.now();
      this.spent.select_ms += highAt - selectAt;
      await this.reader.watermark({ run: this.run, chunk: p.n, kind: 'high' });
      this.spent.watermarks_ms += Date.now() - highAt;
      if (chunk.last) {
        // The table's end: the next read follows the progress (the next task), once this is written.
        const waitAt = Date.now();
        await Promise.all(this.pending.map((x) => x.handled));
        this.spent.wait_stream_ms += Date.now() - waitAt;
        cursor = null;
        continue;
      }
      cursor.chunk++;
      cursor.last_key = chunk.lastKey;
      cursor.max_key = chunk.maxKey;
      cursor.rows_estimate = chunk.rowsEstimate;
    }
  }
}

function sameKey(a: readonly string[] | null, b: readonly string[] | null): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
