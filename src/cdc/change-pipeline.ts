import type { Pgoutput } from 'pg-logical-replication';
import type { Logger } from '../core/logger.js';
import type { Pseudonymiser } from '../core/pseudonym.js';
import { CommitPacer } from '../runtime/commit-pacer.js';
import { ChangeRenderer, type RendererOptions } from './change-renderer.js';
import type { Emit, TopicRoutes } from './envelope.js';
import { formatLsn, parseLsn, parseLsnOrZero, type Lsn } from './lsn.js';
import { sizeGuardedEmit, type TruncatedInfo } from './oversize.js';
import { positionRecord, type CdcPosition } from './position-store.js';
import type { RowMessage, StreamMessage } from './pgoutput-rows.js';
import type { TxnWriter } from './txn-writer.js';
import type { StreamTap } from './incremental-snapshot/snapshotter.js';

/**
 * Turns the pgoutput message sequence of one session into Kafka transactions.
 *
 * - A PostgreSQL transaction whose commit record starts below `skipBelow` (the committed position's
 *   LSN) is already in Kafka: it is skipped whole, and its end LSN confirmed.
 * - Otherwise its changes are rendered and handed to the TxnWriter as they arrive, synchronously
 *   (memory bounded by the writer: when it is full, `handle` returns a promise and the replication
 *   stream stays paused until it settles).
 * - A batch (the changes since the last Kafka commit) is closed only at a PostgreSQL COMMIT, with
 *   the position record of its last transaction, so each Kafka transaction holds whole PostgreSQL
 *   transactions. It is due when it holds `maxBatchRows` rows, or has been open
 *   `commitIntervalMs`, or — while the stream is live (its last transaction committed in
 *   PostgreSQL less than `commitIntervalMs` ago) — as soon as the commit pacer allows
 *   (runtime/commit-pacer.ts: after a Kafka commit that took d ms, the next may start d × PACE_RATIO
 *   ms after it ended). A live stream is committed about one Kafka commit after PostgreSQL's; a
 *   stream reading a backlog (old transactions) fills batches up to the two bounds, as the
 *   broker's cost is per transaction. (PostgreSQL's clock and this host's are compared: a skew
 *   larger than `commitIntervalMs` only makes a live stream batch as a backlog does.)
 * - A transaction larger than `splitRows` changes is written across several Kafka transactions:
 *   once the batch holds `splitRows` records inside it, the batch is committed there, with a
 *   position whose `partial` says how many of that transaction's row changes Kafka holds (`lsn`
 *   still names the last complete one, so PostgreSQL is not told of it). A session resuming from
 *   such a position (`resumeFrom`) skips that many changes of that transaction, which PostgreSQL
 *   sends again in the same order, and writes the rest: every change once.
 * - One Kafka commit runs at a time, and the stream does not wait for it: later changes go into the
 *   next batch (the writer holds them until the commit is done) — group commit: a quiet stream
 *   commits each transaction at once, a busy one amortises each commit over many.
 * - Only after a Kafka commit is its last transaction's end LSN confirmed to PostgreSQL (`ack`).
 * - A `tap` (the incremental snapshot, incremental-snapshot/snapshotter.ts) sees every transaction
 *   being written (its xid, the keys of its records) and its logical messages, may add records at
 *   a message (a chunk at its high watermark), and gives the snapshot progress each position
 *   record carries.
 *
 * The first error poisons the pipeline: nothing more is written or confirmed, `onFail` is told, and
 * the session starts over from the slot's confirmed position.
 */

export interface PipelineOptions extends Pick<RendererOptions, 'onRelation'> {
  slot: string;
  serverName: string;
  db: string;
  positionTopic: string;
  routes: TopicRoutes;
  maxBatchRows: number;
  /** Records one Kafka transaction takes of a PostgreSQL transaction larger than that. */
  splitRows: number;
  /** Upper bound of a batch's age, and how far behind PostgreSQL the stream may be to count as live. */
  commitIntervalMs: number;
  skipBelow: Lsn;
  snapshot: CdcPosition['snapshot'];
  /** The committed position this replication session starts from: its `partial` is resumed, its fields carried. */
  resumeFrom?: CdcPosition | null;
  writer: TxnWriter;
  /** The most bytes (key + value) one change event may take; larger ones are cut (oversize.ts). */
  maxEventBytes: number;
  /** An event was written with oversized values replaced by a marker. */
  onTruncated(topic: string, key: string | null, info: TruncatedInfo): void;
  primaryKey(relationOid: number): Promise<string[]>;
  /** Confirms to PostgreSQL every transaction ending at or before `lsn` (only whole ones). */
  ack(lsn: Lsn): void;
  onCommitted(info: CommittedBatch): void;
  onFail(err: unknown): void;
  /** A TRUNCATE of these captured tables (schema.table), seen once per transaction not yet confirmed. */
  onTableTruncate?(tables: string[]): void;
  /** The incremental snapshot's view of the stream (absent: positions carry `resumeFrom`'s). */
  tap?: StreamTap;
  /** The tagged columns' pseudonyms (PII_FIELDS; absent: values as they are). */
  pii?: Pseudonymiser;
  log: Logger;
}

export interface CommittedBatch {
  endLsn: Lsn;
  commitTsMs: number;
  transactions: number;
  /** Each of the batch's transactions' PostgreSQL commit time (ms), in order: the CDC's freshness. */
  commitTimesMs: number[];
  rows: Map<string, number>;
}

/**
 * Wait after a Kafka commit, as a multiple of what commits cost (commit-pacer.ts): the CDC keeps
 * the broker busy with its transactions at most half the time.
 */
const PACE_RATIO = 1;

interface OpenTxn {
  finalLsn: Lsn;
  /** `finalLsn` in decimal, for `source.sequence`. */
  finalLsnText: string;
  xid: number;
  commitMs: number;
  skip: boolean;
  /** Row changes of it seen so far (written or skipped). */
  changes: number;
  /** Its first changes already in Kafka (a split transaction being resumed): not written again. */
  skipChanges: number;
}

/** The position fields of the last complete transaction in Kafka. */
type PositionBase = Pick<CdcPosition, 'lsn' | 'commit_lsn' | 'tx_id' | 'commit_ts_ms'>;

interface Batch {
  startedAt: number;
  transactions: number;
  commitTimesMs: number[];
  last?: { finalLsn: Lsn; endLsn: Lsn; xid: number; commitMs: number };
}

export class ChangePipeline {
  private failed = false;
  private stopping = false;
  private txn: OpenTxn | null = null;
  /** The batch being filled; a batch handed to the writer's commit is no longer here. */
  private batch: Batch | null = null;
  /** The Kafka commit in flight (at most one). */
  private committing: Promise<void> | null = null;
  /** The batch should be committed at the next PostgreSQL commit boundary with no commit in flight. */
  private due = false;
  private lingerTimer: NodeJS.Timeout | undefined;
  /** Set while a live batch waits for the pacer. */
  private gapTimer: NodeJS.Timeout | undefined;
  private readonly pacer: CommitPacer;
  private readonly renderer: ChangeRenderer;
  /** The writer's size-guarded emit (the tap's records go straight here). */
  private readonly emit: Emit;
  private base: PositionBase;
  /** Without a tap: the incremental progress carried forward from `resumeFrom`. */
  private readonly incremental: Pick<CdcPosition, 'incremental'>;
  /** The split transaction to resume (from `resumeFrom.partial`), until its BEGIN is seen. */
  private resume: { finalLsn: Lsn; changes: number } | null;

  constructor(private readonly o: PipelineOptions) {
    const writer = o.writer;
    this.pacer = new CommitPacer({ ratio: PACE_RATIO, maxGapMs: o.commitIntervalMs });
    const emit = sizeGuardedEmit((topic, key, value) => writer.add(topic, key, value), o.maxEventBytes, o.onTruncated);
    this.emit = emit;
    const tap = o.tap;
    this.renderer = new ChangeRenderer(
      o,
      tap
        ? (topic, key, value) => {
            tap.record(topic, key);
            emit(topic, key, value);
          }
        : emit,
    );
    const from = o.resumeFrom ?? null;
    this.base = from
      ? { lsn: from.lsn, commit_lsn: from.commit_lsn, tx_id: from.tx_id, commit_ts_ms: from.commit_ts_ms }
      : { lsn: formatLsn(o.skipBelow), commit_lsn: null, tx_id: null, commit_ts_ms: null };
    this.incremental = from?.incremental ? { incremental: from.incremental } : {};
    const partial = from?.partial;
    this.resume = partial ? { finalLsn: parseLsn(partial.commit_lsn), changes: partial.changes } : null;
  }

  /** Handles one message, in stream order. Returns a promise only when the stream must wait
   *  (writer full, catalogue lookup); never rejects — a failure goes to `onFail`. */
  handle(lsn: string, msg: StreamMessage): Promise<void> | undefined {
    if (this.failed || this.stopping) return undefined;
    try {
      switch (msg.tag) {
        case 'insert':
        case 'update':
        case 'delete':
          this.onChange(lsn, msg);
          this.maybeSplit();
          return this.o.writer.full ? this.o.writer.room().catch((err: unknown) => this.fail(err)) : undefined;
        case 'begin':
          this.onBegin(msg);
          return undefined;
        case 'commit':
          this.onCommit(msg);
          return undefined;
        case 'relation':
          return this.renderer.relation(msg).catch((err: unknown) => this.fail(err));
        case 'truncate':
          if (this.txn && !this.txn.skip) {
            const tables = msg.relations.map((r) => `${r?.schema ?? 'public'}.${r?.name ?? '?'}`);
            this.o.log.warn(
              { tables },
              'TRUNCATE is not propagated (as Debezium by default): consumers keep the rows; new rows may reuse ids (the sinks key events by id and event_ts)',
            );
            this.o.onTableTruncate?.(tables);
          }
          return undefined;
        case 'message':
          if (this.o.tap && this.txn && !this.txn.skip && this.batch && msg.transactional) {
            this.o.tap.message(
              msg.prefix,
              Buffer.from(msg.content).toString('utf8'),
              msg.messageLsn ?? '0/0',
              this.txn,
              this.emit,
            );
            return this.o.writer.full ? this.o.writer.room().catch((err: unknown) => this.fail(err)) : undefined;
          }
          return undefined; // heartbeats, other tools' messages: nothing to write
        default:
          return undefined; // type, origin: nothing to write
      }
    } catch (err) {
      this.fail(err);
      return undefined;
    }
  }

  /** Stops taking messages; waits for the commit in flight, then commits the open batch when it
   *  ends on a PostgreSQL commit, else aborts it. */
  async drain(): Promise<void> {
    this.stopping = true;
    this.clearTimers();
    while (this.committing) await this.committing;
    if (this.failed) return;
    if (this.batch?.last && this.txn === null) {
      this.due = true;
      this.tryCommit();
      while (this.committing) await this.committing;
    } else {
      await this.o.writer.abort();
    }
  }

  private onBegin(msg: Pgoutput.MessageBegin): void {
    const finalLsn = parseLsnOrZero(msg.commitLsn);
    const skip = finalLsn < this.o.skipBelow;
    const resumed = this.resume !== null && this.resume.finalLsn === finalLsn ? this.resume.changes : 0;
    if (resumed > 0) {
      this.resume = null;
      this.o.log.info({ commit_lsn: formatLsn(finalLsn), changes: resumed }, 'resuming a split transaction');
    }
    this.txn = {
      finalLsn,
      finalLsnText: finalLsn.toString(),
      xid: msg.xid,
      commitMs: Number((msg.commitTime as bigint) / 1000n),
      skip,
      changes: 0,
      skipChanges: resumed,
    };
    if (!skip) this.o.tap?.begin(msg.xid);
    if (skip || this.batch) return;
    this.batch = { startedAt: Date.now(), transactions: 0, commitTimesMs: [] };
    this.lingerTimer = setTimeout(() => this.markDue(), this.o.commitIntervalMs);
  }

  private onChange(lsn: string, msg: RowMessage): void {
    const txn = this.txn;
    if (!txn || txn.skip || !this.batch) return;
    txn.changes++;
    if (txn.changes <= txn.skipChanges) return; // in Kafka already: the split transaction's first part
    this.renderer.change(lsn, msg, txn);
  }

  private onCommit(msg: Pgoutput.MessageCommit): void {
    const txn = this.txn;
    this.txn = null;
    if (!txn) return;
    const endLsn = parseLsnOrZero(msg.commitEndLsn);
    if (txn.skip) {
      if (!this.batch && !this.committing) this.o.ack(endLsn); // already in Kafka
      return;
    }
    this.o.tap?.end();
    const batch = this.batch;
    if (!batch) throw new Error('commit without an open batch');
    batch.transactions++;
    batch.commitTimesMs.push(txn.commitMs);
    batch.last = { finalLsn: txn.finalLsn, endLsn, xid: txn.xid, commitMs: txn.commitMs };
    if (this.o.writer.size >= this.o.maxBatchRows || Date.now() - batch.startedAt >= this.o.commitIntervalMs)
      this.due = true;
    this.pace();
  }

  /** A timer made the batch due (its age, or the pacer's wait): it goes at the next commit boundary. */
  private markDue(): void {
    this.due = true;
    this.tryCommit();
  }

  /**
   * At a commit boundary with no Kafka commit in flight: commits a due batch, or makes a live one
   * due once the pacer allows. A batch behind PostgreSQL waits for its size or age bound.
   */
  private pace(): void {
    const batch = this.batch;
    if (this.committing || this.failed || !batch?.last) return;
    if (!this.due && Date.now() - batch.last.commitMs < this.o.commitIntervalMs) {
      const wait = this.pacer.waitMs();
      if (wait > 0) {
        this.gapTimer ??= setTimeout(() => {
          this.gapTimer = undefined;
          this.markDue();
        }, wait);
        return;
      }
      this.due = true;
    }
    this.tryCommit();
  }

  /** Commits the batch if it is due, ends on a PostgreSQL commit and no other commit is in flight. */
  private tryCommit(): void {
    const batch = this.batch;
    if (!this.due || this.committing || this.failed || !batch?.last || this.txn !== null) return;
    this.batch = null;
    this.due = false;
    this.startCommit(batch, null);
  }

  /**
   * Inside a transaction, once the batch holds `splitRows` records and no commit is in flight:
   * commits the batch there (its position says how far into the transaction), and the rest of the
   * transaction fills a new batch.
   */
  private maybeSplit(): void {
    const { txn, batch } = this;
    if (!txn || txn.skip || !batch || this.committing || this.failed || this.stopping) return;
    if (this.o.writer.size < this.o.splitRows) return;
    this.batch = null;
    this.due = false;
    this.startCommit(batch, txn);
    this.batch = { startedAt: Date.now(), transactions: 0, commitTimesMs: [] };
    this.lingerTimer = setTimeout(() => this.markDue(), this.o.commitIntervalMs);
  }

  /** Commits `batch` with its position record: after its last whole transaction, and `inside` that far. */
  private startCommit(batch: Batch, inside: OpenTxn | null): void {
    this.clearTimers();
    const startedAt = this.pacer.started();
    const last = batch.last;
    if (last) {
      this.base = {
        lsn: formatLsn(last.endLsn),
        commit_lsn: formatLsn(last.finalLsn),
        tx_id: last.xid,
        commit_ts_ms: last.commitMs,
      };
    }
    const rows = this.renderer.takeCounts();
    if (this.o.tap) for (const [k, n] of this.o.tap.takeCounts()) rows.set(k, n);
    const position: CdcPosition = {
      slot: this.o.slot,
      server_name: this.o.serverName,
      phase: 'streaming',
      ...this.base,
      partial: inside ? { commit_lsn: formatLsn(inside.finalLsn), tx_id: inside.xid, changes: inside.changes } : null,
      snapshot: this.o.snapshot,
      ...(this.o.tap ? { incremental: this.o.tap.progress() } : this.incremental),
      written_at_ms: Date.now(),
    };
    const endLsn = last?.endLsn ?? parseLsn(this.base.lsn);
    const commitTsMs = last?.commitMs ?? inside?.commitMs ?? Date.now();
    this.committing = this.o.writer.commit([positionRecord(this.o.positionTopic, position)]).then(
      () => {
        this.committing = null;
        this.pacer.ended(startedAt);
        if (this.failed) return;
        if (last) this.o.ack(last.endLsn);
        const { transactions, commitTimesMs } = batch;
        this.o.onCommitted({ endLsn, commitTsMs, transactions, commitTimesMs, rows });
        this.pace(); // the batch filled meanwhile: now if due, else once the pacer allows
        this.maybeSplit();
      },
      (err: unknown) => {
        this.committing = null;
        this.pacer.ended(startedAt);
        this.fail(err);
      },
    );
  }

  private fail(err: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.clearTimers();
    this.o.onFail(err);
  }

  private clearTimers(): void {
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    if (this.gapTimer) clearTimeout(this.gapTimer);
    this.lingerTimer = undefined;
    this.gapTimer = undefined;
  }
}
