import type { Pgoutput } from 'pg-logical-replication';
import type { Logger } from '../core/logger.js';
import type { Pseudonymiser } from '../core/pseudonym.js';
import {
  CDC_VERSION,
  emitChange,
  emitUpdate,
  routeFor,
  sourcePrefix,
  type ChangeAt,
  type Emit,
  type TableMeta,
  type TopicRoutes,
} from './envelope.js';
import { lsnTextToNumber } from './lsn.js';
import type { RowMessage } from './pgoutput-rows.js';
import { RowJson } from './row-json.js';

/**
 * Renders the row messages of a pgoutput stream into Debezium-style change events (envelope.ts),
 * keeping what the stream said about each published table (its Relation messages) and counting
 * the rows rendered per table and op since the last `takeCounts`.
 *
 * Contract: `relation` for every Relation message, in stream order, before the rows that use it;
 * `change` for every insert/update/delete of the transaction `txn` (synchronous, no I/O). A table
 * without a topic is logged once and its rows are not rendered.
 */

/** The source transaction a change belongs to, as the renderer needs it. */
export interface RenderTxn {
  /** The commit record's LSN in decimal, for `source.sequence`. */
  finalLsnText: string;
  xid: number;
  commitMs: number;
}

/** A published table as the stream knows it (replaced by each Relation message). */
interface Relation {
  meta: TableMeta;
  topic: string | undefined;
  /** The serialised fixed source block, valid for the transaction `prefixTxn`. */
  prefix: string;
  prefixTxn: RenderTxn | null;
  /** Rows rendered since the last `takeCounts`, by op (carried over when the relation is replaced). */
  counts: { c: number; u: number; d: number };
}

export interface RendererOptions {
  serverName: string;
  db: string;
  routes: TopicRoutes;
  primaryKey(relationOid: number): Promise<string[]>;
  /** Told of a captured table's layout before its rows (KAFKA_VALUE_FORMAT=avro registers its
   *  schemas, avro/avro-encoder.ts); a rejection fails the stream before any of those rows. */
  onRelation?(topic: string, meta: TableMeta): Promise<void>;
  /** The tagged columns' pseudonyms (PII_FIELDS; absent: values as they are). */
  pii?: Pseudonymiser;
  log: Logger;
}

export class ChangeRenderer {
  private readonly relations = new Map<number, Relation>();
  private readonly unrouted = new Set<string>();
  private readonly at: ChangeAt = { prefix: '', lsn: 0, sequence: '' };

  constructor(
    private readonly o: RendererOptions,
    private readonly emit: Emit,
  ) {}

  async relation(msg: Pgoutput.MessageRelation): Promise<void> {
    const previous = this.relations.get(msg.relationOid);
    const columns = msg.columns.map((c) => ({ name: c.name, typeOid: c.typeOid }));
    const primaryKey = await this.o.primaryKey(msg.relationOid);
    const meta: TableMeta = {
      relationOid: msg.relationOid,
      schema: msg.schema,
      table: msg.name,
      columns,
      primaryKey,
      replicaIdentity: msg.replicaIdentity,
      json: new RowJson(
        columns,
        primaryKey,
        this.o.pii?.columns(
          msg.name,
          columns.map((c) => c.name),
        ),
      ),
    };
    const topic = routeFor(this.o.routes, meta.schema, meta.table);
    if (topic !== undefined) await this.o.onRelation?.(topic, meta);
    this.relations.set(msg.relationOid, {
      meta,
      topic,
      prefix: '',
      prefixTxn: null,
      counts: previous?.counts ?? { c: 0, u: 0, d: 0 },
    });
    if (previous && previous.meta.columns.length !== meta.columns.length) {
      this.o.log.info(
        { table: meta.table, columns: meta.columns.map((c) => c.name) },
        'schema change: later events carry the new columns',
      );
    }
    if (previous && previous.meta.replicaIdentity !== meta.replicaIdentity) {
      this.o.log.warn(
        { table: meta.table, from: previous.meta.replicaIdentity, to: meta.replicaIdentity },
        'REPLICA IDENTITY changed',
      );
    }
  }

  /** Renders one row change of `txn` at WAL position `lsn` (text). Throws for an unknown relation. */
  change(lsn: string, msg: RowMessage, txn: RenderTxn): void {
    const rel = this.relations.get(msg.relation.relationOid);
    if (!rel) throw new Error(`change for unknown relation ${msg.relation.relationOid}`);
    const { meta, topic } = rel;
    if (topic === undefined) {
      const name = `${meta.schema}.${meta.table}`;
      if (!this.unrouted.has(name)) this.o.log.warn({ table: name }, 'published table has no topic: not captured');
      this.unrouted.add(name);
      return;
    }
    if (rel.prefixTxn !== txn) {
      rel.prefix = sourcePrefix({
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
      rel.prefixTxn = txn;
    }
    const changeLsn = lsnTextToNumber(lsn);
    const at = this.at;
    at.prefix = rel.prefix;
    at.lsn = changeLsn;
    at.sequence = `["${txn.finalLsnText}","${changeLsn}"]`;
    const now = Date.now();
    const json = meta.json;
    const emit = this.emit;
    if (msg.tag === 'insert') {
      const values = msg.new;
      emitChange(emit, topic, json.key(values), 'c', 'null', json.row(values), at, now);
      rel.counts.c++;
    } else if (msg.tag === 'update') {
      const { new: values, old, key: keyTuple } = msg;
      const before = old ? json.row(old) : 'null';
      const oldRow = old ? before : keyTuple ? json.keyOnlyRow(keyTuple) : 'null';
      const oldKey = old ? json.key(old) : keyTuple ? json.key(keyTuple, true) : null;
      emitUpdate(emit, topic, oldKey, json.key(values), before, oldRow, json.row(values), at, now);
      rel.counts.u++;
    } else {
      const { old, key: keyTuple } = msg;
      const before = old ? json.row(old) : keyTuple ? json.keyOnlyRow(keyTuple) : 'null';
      const key = old ? json.key(old) : keyTuple ? json.key(keyTuple, true) : null;
      emitChange(emit, topic, key, 'd', before, 'null', at, now);
      rel.counts.d++;
    }
  }

  /** Rows rendered since the last call, keyed `table|op`; the counts start over. */
  takeCounts(): Map<string, number> {
    const rows = new Map<string, number>();
    for (const { counts, meta } of this.relations.values()) {
      if (counts.c) rows.set(`${meta.table}|c`, counts.c);
      if (counts.u) rows.set(`${meta.table}|u`, counts.u);
      if (counts.d) rows.set(`${meta.table}|d`, counts.d);
      counts.c = counts.u = counts.d = 0;
    }
    return rows;
  }
}
