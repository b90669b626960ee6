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
} from './progress.js';
import { WatermarkWindow } from './watermark-window.js';

/**
 * The incremental snapshot of one CDC session: reads the pending tasks' chunks (chunk-reader.ts)
 * in the background while the session streams, and — as the ChangePipeline's StreamTap — sees the
 * stream in order: the transactions' keys (for the watermark window), the watermarks, and the
 * snapshot signals (`engage cdc snapshot`).
 *
 * Contract:
 * - one chunk at a time: L, read, H, then wait until the stream reached H; at H the chunk's rows
 *   the stream does not win (watermark-window.ts) are emitted as `op: "r"`, `source.snapshot:
 *   "incremental"`, inside H's transaction, and the task's progress moves on in the same step —
 *   so `progress()`, which the pipeline puts in the position record of its next Kafka commit,
 *   always describes exactly the chunks whose records precede that commit;
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

interface PendingChunk {
  n: number;
  chunk: Chunk;
  lowSeen: boolean;
  done(): void;
}

export class Snapshotter implements StreamTap {
  private readonly state: IncrementalProgress;
  private readonly run = randomBytes(4).toString('hex');
  private readonly window = new WatermarkWindow();
  private readonly abort = new AbortController();
  private reader: ChunkReader | undefined;
  private pending: PendingChunk | null = null;
  private seq = 0;
  /** The topic of the table being read (its keys feed the window). */
  private topic: string | undefined;
  private counts = new Map<string, number>();
  private wake: (() => void) | null = null;
  private loop: Promise<void> = Promise.resolve();
  /** Where the current table's time went (ms), logged when it is read: the chunk SELECTs, the two
   *  watermark commits, and from H's commit until the stream reached H and wrote the chunk. */
  private spent = { select_ms: 0, watermarks_ms: 0, stream_to_high_ms: 0 };

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
    this.pending?.done();
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
    const p = this.pending;
    if (!w || w.run !== this.run || !p || w.chunk !== p.n) return; // another session's, or replayed
    if (w.kind === 'low') {
      p.lowSeen = true;
      this.window.low();
      return;
    }
    this.pending = null;
    const result = this.window.high(p.chunk.rows, p.chunk.snapshot);
    const task = this.state.tasks[0];
    if (!result || !task || this.topic === undefined) return p.done(); // window unknown: read it again
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
    task.last_key = p.chunk.lastKey;
    task.max_key = p.chunk.maxKey;
    task.rows_estimate = p.chunk.rowsEstimate;
    this.state.rows += kept;
    this.state.chunks++;
    if (result.dropped > 0)
      this.o.log.debug({ table: task.table, chunk: task.chunk, dropped: result.dropped }, 'chunk rows the stream won');
    if (p.chunk.last) {
      this.state.tasks.shift();
      this.state.last_completed = { id: task.id, table: task.table, rows: task.rows, completed_at_ms: now };
      this.o.log.info(
        { id: task.id, table: task.table, rows: task.rows, chunks: task.chunk, ...this.spent },
        'incremental snapshot: table read',
      );
      this.spent = { select_ms: 0, watermarks_ms: 0, stream_to_high_ms: 0 };
      this.selectTable();
    }
    this.o.onProgress(progressView(this.state));
    p.done();
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
    while (!signal.aborted) {
      const task = this.state.tasks[0];
      if (!task) {
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
      this.reader ??= await ChunkReader.connect(this.o.url, this.o.slot, this.o.pii);
      const startedAt = Date.now();
      const n = ++this.seq;
      let done: () => void = () => undefined;
      const handled = new Promise<void>((resolve) => (done = resolve));
      const p: PendingChunk = { n, chunk: undefined as unknown as Chunk, lowSeen: false, done };
      this.pending = p;
      await this.reader.watermark({ run: this.run, chunk: n, kind: 'low' });
      const selectAt = Date.now();
      this.spent.watermarks_ms += selectAt - startedAt;
      try {
        p.chunk = await this.reader.read(task, this.o.chunkRows);
      } catch (err) {
        this.pending = null;
        if (task.where !== null && /^(42|22)/.test(String((err as { code?: string }).code ?? ''))) {
          this.o.log.error(
            { id: task.id, table: task.table, where: task.where, err: String(err) },
            'incremental snapshot: PostgreSQL refuses the condition; task dropped',
          );
          this.state.tasks.shift();
          this.selectTable();
          continue;
        }
        throw new PipelineError('SERVICE_UNREACHABLE', `incremental snapshot chunk: ${String(err)}`, {
          retriable: true,
          cause: err,
        });
      }
      if (p.chunk.rows.length > 0) {
        const [schema = 'public', table = task.table] = task.table.split('.');
        await this.o.onColumns?.(this.topic, { schema, table, ...p.chunk.layout });
      }
      const highAt = Date.now();
      this.spent.select_ms += highAt - selectAt;
      await this.reader.watermark({ run: this.run, chunk: n, kind: 'high' });
      const committedAt = Date.now();
      this.spent.watermarks_ms += committedAt - highAt;
      await handled;
      this.spent.stream_to_high_ms += Date.now() - committedAt;
      const minMs = this.o.maxRowsPerSecond > 0 ? (p.chunk.rows.length / this.o.maxRowsPerSecond) * 1000 : 0;
      const wait = minMs - (Date.now() - startedAt);
      if (wait > 0) await sleep(wait, signal).catch(() => undefined);
    }
  }
}
