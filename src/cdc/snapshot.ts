import pg from 'pg';
import type { Logger } from '../core/logger.js';
import type { Pseudonymiser } from '../core/pseudonym.js';
import { CDC_VERSION, emitChange, routeFor, sourcePrefix, type Emit, type TopicRoutes } from './envelope.js';
import { parseLsn } from './lsn.js';
import { sizeGuardedEmit, type TruncatedInfo } from './oversize.js';
import { pgClientConfig, pgIdent, type PgControl } from './pg-control.js';
import { positionRecord, type CdcPosition } from './position-store.js';
import type { Tuple } from './pgoutput-rows.js';
import type { ColumnType } from './render.js';
import { RowJson } from './row-json.js';
import type { TxnWriter } from './txn-writer.js';

/**
 * Creating the slot and taking the initial snapshot.
 *
 * The slot is created on a replication connection with EXPORT_SNAPSHOT; a second session imports
 * that snapshot (REPEATABLE READ + SET TRANSACTION SNAPSHOT) before the exporting connection issues
 * anything else, so the rows read are exactly the state at the slot's consistent point: every
 * transaction committed before it is in the snapshot, every later one comes through the slot.
 *
 * The whole snapshot is ONE Kafka transaction, together with the position record (phase
 * `snapshot`, lsn = consistent point). Until that commit a read_committed consumer sees none of it;
 * a crash before the commit aborts it, and the next start (the `snapshot-pending` record committed
 * before the slot was created, the slot present) drops the slot and begins again: the snapshot is
 * redone, never seen twice. Rows are read through a cursor in
 * chunks and handed to the TxnWriter, so memory stays bounded whatever the table size; the limit is
 * the Kafka transaction timeout (TXN_TIMEOUT_MS in session.ts, 10 min).
 */

const FETCH_ROWS = 2000;
/** Tables in snapshot order: content before the events that reference it. */
const TABLE_ORDER = ['content', 'engagement_events'];

export interface CreatedSlot {
  consistentPoint: string;
  snapshotName: string | null;
  /** The replication connection that created the slot; must stay open until the snapshot is imported. */
  connection: pg.Client;
}

export async function createSlot(url: string, slot: string, exportSnapshot: boolean): Promise<CreatedSlot> {
  const connection = new pg.Client(pgClientConfig(url, `engage-cdc-create:${slot}`, true));
  connection.on('error', () => undefined);
  await connection.connect();
  try {
    const res = await connection.query(
      `CREATE_REPLICATION_SLOT ${pgIdent(slot)} LOGICAL pgoutput ${exportSnapshot ? 'EXPORT_SNAPSHOT' : 'NOEXPORT_SNAPSHOT'}`,
    );
    const row = res.rows[0] as { consistent_point: string; snapshot_name: string | null };
    return { consistentPoint: row.consistent_point, snapshotName: row.snapshot_name, connection };
  } catch (err) {
    await connection.end().catch(() => undefined);
    throw err;
  }
}

export interface SnapshotParams {
  url: string;
  slot: string;
  publication: string;
  serverName: string;
  positionTopic: string;
  routes: TopicRoutes;
  created: CreatedSlot;
  control: PgControl;
  writer: TxnWriter;
  /** The most bytes (key + value) one change event may take; larger ones are cut (oversize.ts). */
  maxEventBytes: number;
  onTruncated(topic: string, key: string | null, info: TruncatedInfo): void;
  /** Told of each table's columns before its rows (KAFKA_VALUE_FORMAT=avro registers its schemas). */
  onColumns?(topic: string, layout: SnapshotLayout): Promise<void>;
  /** The tagged columns' pseudonyms (PII_FIELDS; absent: values as they are). */
  pii?: Pseudonymiser;
  log: Logger;
  /** Called after each chunk (status/metrics). */
  onRows?: (table: string, rows: number) => void;
}

/** A table's columns (in the rows' order) and primary key, as the snapshot reads them. */
export interface SnapshotLayout {
  schema: string;
  table: string;
  columns: ColumnType[];
  primaryKey: string[];
}

/** Reads every published table inside the exported snapshot and commits it with the position. */
export async function runSnapshot(p: SnapshotParams): Promise<{ position: CdcPosition; rows: Map<string, number> }> {
  const reader = new pg.Client(pgClientConfig(p.url, `engage-cdc-snapshot:${p.slot}`));
  reader.on('error', () => undefined);
  await reader.connect();
  const startedAt = Date.now();
  try {
    await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    await reader.query(`SET TRANSACTION SNAPSHOT '${p.created.snapshotName ?? ''}'`);
    // The snapshot is imported: the exporting connection may go (its next command would end the export).
    await p.created.connection.end().catch(() => undefined);
    const db = (await reader.query('SELECT current_database() AS db')).rows[0] as { db: string };
    const tables = (
      await reader.query(
        `SELECT t.schemaname, t.tablename, c.oid::int AS oid, c.relreplident
         FROM pg_publication_tables t JOIN pg_class c ON c.oid = (quote_ident(t.schemaname) || '.' || quote_ident(t.tablename))::regclass
        WHERE t.pubname = $1`,
        [p.publication],
      )
    ).rows as Array<{ schemaname: string; tablename: string; oid: string; relreplident: string }>;
    tables.sort((a, b) => rank(a.tablename) - rank(b.tablename));
    const emitRecord: Emit = sizeGuardedEmit(
      (topic, key, value) => p.writer.add(topic, key, value),
      p.maxEventBytes,
      p.onTruncated,
    );
    /** The row read last: written once the next one shows whether it is the snapshot's last. */
    let pending:
      { topic: string; oid: number; schema: string; table: string; key: string | null; after: string } | undefined;
    const consistentLsn = Number(parseLsn(p.created.consistentPoint));
    const prefixes = new Map<string, string>();
    let emitted = 0;
    const counts = new Map<string, number>();
    const emit = async (last: boolean) => {
      if (!pending) return;
      const marker = emitted === 0 ? 'first' : last ? 'last' : 'true';
      const cacheKey = `${pending.oid}|${marker}`;
      const prefix =
        prefixes.get(cacheKey) ??
        sourcePrefix({
          version: CDC_VERSION,
          connector: 'postgresql',
          name: p.serverName,
          ts_ms: startedAt,
          snapshot: marker,
          db: db.db,
          schema: pending.schema,
          table: pending.table,
          txId: null,
        });
      prefixes.set(cacheKey, prefix);
      emitChange(
        emitRecord,
        pending.topic,
        pending.key,
        'r',
        'null',
        pending.after,
        { prefix, lsn: consistentLsn },
        Date.now(),
      );
      emitted++;
      pending = undefined;
      if (p.writer.full) await p.writer.room();
    };
    for (const t of tables) {
      const topic = routeFor(p.routes, t.schemaname, t.tablename);
      if (!topic) {
        p.log.warn({ table: `${t.schemaname}.${t.tablename}` }, 'published table has no topic: not captured');
        continue;
      }
      const primaryKey = await p.control.primaryKey(Number(t.oid));
      await reader.query(
        `DECLARE engage_snapshot NO SCROLL CURSOR FOR SELECT * FROM ${pgIdent(t.schemaname)}.${pgIdent(t.tablename)}`,
      );
      let tableRows = 0;
      let json: RowJson | undefined;
      for (;;) {
        const res = await reader.query<Tuple>({
          text: `FETCH FORWARD ${FETCH_ROWS} FROM engage_snapshot`,
          rowMode: 'array',
        });
        if (res.rows.length === 0) break;
        json ??= new RowJson(
          res.fields.map((f) => ({ name: f.name, typeOid: f.dataTypeID })),
          primaryKey,
          p.pii?.columns(
            t.tablename,
            res.fields.map((f) => f.name),
          ),
        );
        if (tableRows === 0) {
          const columns = res.fields.map((f) => ({ name: f.name, typeOid: f.dataTypeID }));
          await p.onColumns?.(topic, { schema: t.schemaname, table: t.tablename, columns, primaryKey });
        }
        for (const raw of res.rows) {
          await emit(false);
          pending = {
            topic,
            oid: Number(t.oid),
            schema: t.schemaname,
            table: t.tablename,
            key: json.key(raw),
            after: json.row(raw),
          };
        }
        tableRows += res.rows.length;
        counts.set(`${t.tablename}|r`, tableRows);
        p.onRows?.(t.tablename, res.rows.length);
      }
      await reader.query('CLOSE engage_snapshot');
      p.log.info({ table: t.tablename, rows: tableRows }, 'snapshot: table read');
    }
    await emit(true);
    const position: CdcPosition = {
      slot: p.slot,
      server_name: p.serverName,
      phase: 'snapshot',
      lsn: p.created.consistentPoint,
      commit_lsn: null,
      tx_id: null,
      commit_ts_ms: null,
      snapshot: { consistent_point: p.created.consistentPoint, rows: emitted, completed_at_ms: Date.now() },
      written_at_ms: Date.now(),
    };
    await p.writer.commit([positionRecord(p.positionTopic, position)]);
    await reader.query('COMMIT');
    p.log.info(
      { rows: emitted, ms: Date.now() - startedAt, consistent_point: p.created.consistentPoint },
      'snapshot committed to Kafka',
    );
    return { position, rows: counts };
  } finally {
    await p.created.connection.end().catch(() => undefined);
    await reader.end().catch(() => undefined);
  }
}

function rank(table: string): number {
  const i = TABLE_ORDER.indexOf(table);
  return i < 0 ? TABLE_ORDER.length : i;
}
