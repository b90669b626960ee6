import type { Pgoutput } from 'pg-logical-replication';
import type { Logger } from '../core/logger.js';
import { CDC_VERSION, changeRecords, routeFor, sourcePrefix, updateRecords, type OutMessage, type TableMeta, type TopicRoutes } from './envelope.js';
import { formatLsn, lsnTextToNumber, parseLsnOrZero, type Lsn } from './lsn.js';
import { positionRecord, type CdcPosition } from './position-store.js';
import { renderKeyOnlyRow, renderRow, type RawValue } from './render.js';
import type { TxnWriter } from './txn-writer.js';

/**
 * Turns the pgoutput message sequence of one session into Kafka transactions.
 *
 * - A PostgreSQL transaction whose commit record starts below `skipBelow` (the committed position's
 *   LSN) is already in Kafka: it is skipped whole, and its end LSN confirmed.
 * - Otherwise its changes are written into the open Kafka transaction as they arrive (bounded by the
 *   TxnWriter); the Kafka transaction is committed only at a PostgreSQL COMMIT, with the position
 *   record, once it holds `maxBatchRows` rows, or has been open `commitIntervalMs`, or the stream
 *   pauses for IDLE_COMMIT_MS after the COMMIT (caught up: group commit, so a quiet stream commits
 *   at once and a busy one amortises each Kafka commit over many PostgreSQL transactions). Each Kafka
 *   transaction therefore holds whole PostgreSQL transactions; a big one simply keeps it open longer.
 * - Only after the Kafka commit is the last transaction's end LSN confirmed to PostgreSQL (`ack`).
 *
 * Every step runs strictly in order on one promise chain (messages, the linger timer, drain). The
 * first error poisons the pipeline: nothing more is written or confirmed, `onFail` is told, and the
 * session starts over from the slot's confirmed position.
 */

export interface PipelineOptions {
  slot: string;
  serverName: string;
  db: string;
  positionTopic: string;
  routes: TopicRoutes;
  maxBatchRows: number;
  commitIntervalMs: number;
  skipBelow: Lsn;
  snapshot: CdcPosition['snapshot'];
  writer: TxnWriter;
  primaryKey(relationOid: number): Promise<string[]>;
  ack(lsn: Lsn): void;
  onCommitted(info: CommittedBatch): void;
  onFail(err: unknown): void;
  log: Logger;
}

export interface CommittedBatch {
  endLsn: Lsn;
  commitTsMs: number;
  transactions: number;
  rows: Map<string, number>;
}

/** A pause in the stream this long after a PostgreSQL COMMIT means it has caught up: commit to Kafka. */
const IDLE_COMMIT_MS = 3;

interface OpenTxn {
  finalLsn: Lsn;
  xid: number;
  commitMs: number;
  skip: boolean;
  /** Serialised fixed source block per relation oid (built on the relation's first change). */
  prefixes: Map<number, string>;
}

interface Batch {
  startedAt: number;
  transactions: number;
  rows: Map<string, number>;
  last?: { finalLsn: Lsn; endLsn: Lsn; xid: number; commitMs: number };
}

export class ChangePipeline {
  private chain: Promise<void> = Promise.resolve();
  private failed = false;
  private stopping = false;
  private txn: OpenTxn | null = null;
  private batch: Batch | null = null;
  private timer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly relations = new Map<number, TableMeta>();
  private readonly unrouted = new Set<string>();

  constructor(private readonly o: PipelineOptions) {}

  /** Queues one message; resolves when it has been handled (the stream stays paused until then). */
  handle(lsn: string, msg: Pgoutput.Message): Promise<void> {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    return this.enqueue(() => this.onMessage(lsn, msg));
  }

  /** Stops taking messages; commits the open batch when it ends on a PostgreSQL commit, else aborts it. */
  drain(): Promise<void> {
    this.stopping = true;
    return this.enqueue(async () => {
      this.clearTimer();
      if (this.batch && this.txn === null) await this.commitBatch();
      else await this.o.writer.abort();
    }, true);
  }

  private enqueue(step: () => Promise<void>, evenWhenStopping = false): Promise<void> {
    this.chain = this.chain.then(async () => {
      if (this.failed || (this.stopping && !evenWhenStopping)) return;
      try {
        await step();
      } catch (err) {
        this.failed = true;
        this.clearTimer();
        this.o.onFail(err);
      }
    });
    return this.chain;
  }

  private async onMessage(lsn: string, msg: Pgoutput.Message): Promise<void> {
    switch (msg.tag) {
      case 'begin':
        return this.onBegin(msg);
      case 'relation':
        return this.onRelation(msg);
      case 'insert':
      case 'update':
      case 'delete':
        return this.onChange(lsn, msg);
      case 'commit':
        return this.onCommit(msg);
      case 'truncate':
        if (this.txn && !this.txn.skip) {
          this.o.log.warn({ tables: msg.relations.map((r) => r?.name) }, 'TRUNCATE is not propagated (as Debezium by default): consumers keep the rows');
        }
        return;
      default:
        return; // type, origin, message (heartbeats): nothing to write
    }
  }

  private async onBegin(msg: Pgoutput.MessageBegin): Promise<void> {
    const finalLsn = parseLsnOrZero(msg.commitLsn);
    const skip = finalLsn < this.o.skipBelow;
    this.txn = { finalLsn, xid: msg.xid, commitMs: Number((msg.commitTime as bigint) / 1000n), skip, prefixes: new Map() };
    if (skip || this.batch) return;
    await this.o.writer.begin();
    this.batch = { startedAt: Date.now(), transactions: 0, rows: new Map() };
    this.timer = setTimeout(() => void this.enqueue(() => this.onLinger()), this.o.commitIntervalMs);
  }

  private async onRelation(msg: Pgoutput.MessageRelation): Promise<void> {
    const previous = this.relations.get(msg.relationOid);
    const meta: TableMeta = {
      relationOid: msg.relationOid,
      schema: msg.schema,
      table: msg.name,
      columns: msg.columns.map((c) => ({ name: c.name, typeOid: c.typeOid })),
      primaryKey: await this.o.primaryKey(msg.relationOid),
      replicaIdentity: msg.replicaIdentity,
    };
    this.relations.set(msg.relationOid, meta);
    if (previous && previous.columns.length !== meta.columns.length) {
      this.o.log.info({ table: meta.table, columns: meta.columns.map((c) => c.name) }, 'schema change: later events carry the new columns');
    }
    if (previous && previous.replicaIdentity !== meta.replicaIdentity) {
      this.o.log.warn({ table: meta.table, from: previous.replicaIdentity, to: meta.replicaIdentity }, 'REPLICA IDENTITY changed');
    }
  }

  private async onChange(lsn: string, msg: Pgoutput.MessageInsert | Pgoutput.MessageUpdate | Pgoutput.MessageDelete): Promise<void> {
    const txn = this.txn;
    if (!txn || txn.skip || !this.batch) return;
    const meta = this.relations.get(msg.relation.relationOid);
    if (!meta) throw new Error(`change for unknown relation ${msg.relation.relationOid}`);
    const topic = routeFor(this.o.routes, meta.schema, meta.table);
    if (!topic) {
      const name = `${meta.schema}.${meta.table}`;
      if (!this.unrouted.has(name)) this.o.log.warn({ table: name }, 'published table has no topic: not captured');
      this.unrouted.add(name);
      return;
    }
    let prefix = txn.prefixes.get(meta.relationOid);
    if (prefix === undefined) {
      prefix = sourcePrefix({
        version: CDC_VERSION,
        connector: 'postgresql',
        name: this.o.serverName,
        ts_ms: txn.commitMs,
        snapshot: 'false',
        db: this.o.db,
        schema: meta.schema,
        table: meta.table,
        txId: txn.xid,
      });
      txn.prefixes.set(meta.relationOid, prefix);
    }
    const changeLsn = lsnTextToNumber(lsn);
    const at = { prefix, lsn: changeLsn, sequence: `["${txn.finalLsn}","${changeLsn}"]` };
    const now = Date.now();
    const cols = meta.columns;
    let records: OutMessage[];
    let op: string;
    if (msg.tag === 'insert') {
      op = 'c';
      records = changeRecords(topic, meta, 'c', null, renderRow(cols, msg.new as Record<string, RawValue>), at, now);
    } else if (msg.tag === 'update') {
      op = 'u';
      const before = msg.old ? renderRow(cols, msg.old as Record<string, RawValue>) : null;
      const oldKey = before ?? (msg.key ? keyOnly(cols, msg.key) : null);
      records = updateRecords(topic, meta, before, oldKey, renderRow(cols, msg.new as Record<string, RawValue>), at, now);
    } else {
      op = 'd';
      const before = msg.old ? renderRow(cols, msg.old as Record<string, RawValue>) : msg.key ? keyOnly(cols, msg.key) : null;
      records = changeRecords(topic, meta, 'd', before, null, at, now);
    }
    const k = `${meta.table}|${op}`;
    this.batch.rows.set(k, (this.batch.rows.get(k) ?? 0) + 1);
    await this.o.writer.add(records);
  }

  private async onCommit(msg: Pgoutput.MessageCommit): Promise<void> {
    const txn = this.txn;
    this.txn = null;
    const endLsn = parseLsnOrZero(msg.commitEndLsn);
    if (!txn) return;
    if (txn.skip) {
      if (!this.batch) this.o.ack(endLsn); // already in Kafka
      return;
    }
    if (!this.batch) throw new Error('commit without an open batch');
    this.batch.transactions++;
    this.batch.last = { finalLsn: txn.finalLsn, endLsn, xid: txn.xid, commitMs: txn.commitMs };
    if (this.o.writer.size >= this.o.maxBatchRows || Date.now() - this.batch.startedAt >= this.o.commitIntervalMs) {
      await this.commitBatch();
    } else {
      // Group commit: when no further message follows promptly, the stream has caught up — commit now.
      this.idleTimer = setTimeout(() => void this.enqueue(() => this.onLinger()), IDLE_COMMIT_MS);
    }
  }

  private async onLinger(): Promise<void> {
    this.timer = undefined;
    // Inside a PostgreSQL transaction the commit waits for its COMMIT (the age check there fires).
    if (this.batch && this.txn === null) await this.commitBatch();
  }

  private async commitBatch(): Promise<void> {
    const batch = this.batch;
    if (!batch) return;
    this.clearTimer();
    if (!batch.last) {
      await this.o.writer.abort();
      this.batch = null;
      return;
    }
    const last = batch.last;
    const position: CdcPosition = {
      slot: this.o.slot,
      server_name: this.o.serverName,
      phase: 'streaming',
      lsn: formatLsn(last.endLsn),
      commit_lsn: formatLsn(last.finalLsn),
      tx_id: last.xid,
      commit_ts_ms: last.commitMs,
      snapshot: this.o.snapshot,
      written_at_ms: Date.now(),
    };
    await this.o.writer.commit([positionRecord(this.o.positionTopic, position)]);
    this.batch = null;
    this.o.ack(last.endLsn);
    this.o.onCommitted({ endLsn: last.endLsn, commitTsMs: last.commitMs, transactions: batch.transactions, rows: batch.rows });
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.timer = undefined;
    this.idleTimer = undefined;
  }
}

function keyOnly(cols: TableMeta['columns'], key: Record<string, unknown>): Record<string, unknown> {
  const names = Object.keys(key).filter((k) => key[k] !== undefined);
  return renderKeyOnlyRow(cols, names, key as Record<string, RawValue>);
}
