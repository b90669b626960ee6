import pg from 'pg';
import { PipelineError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { PG_SESSION_OPTIONS } from './render.js';

/**
 * The CDC's ordinary (non-replication) PostgreSQL session for one run: it holds the advisory lock
 * that makes a slot single-owner, prepares the publication, inspects the slot, emits heartbeats and
 * reads WAL statistics. Every value comes back as text (type parsers off).
 */

const LOCK_CLASS = 0x0cdc;
export const HEARTBEAT_PREFIX = 'engage-cdc-heartbeat';

export const TEXT_TYPES = { getTypeParser: () => (v: string) => v } as unknown as pg.CustomTypesConfig;

export function pgClientConfig(url: string, applicationName: string, replication = false): pg.ClientConfig {
  const cfg: pg.ClientConfig & { replication?: string } = {
    connectionString: url,
    application_name: applicationName,
    options: PG_SESSION_OPTIONS,
    types: TEXT_TYPES,
    keepAlive: true,
    connectionTimeoutMillis: 10000,
  };
  if (replication) cfg.replication = 'database';
  return cfg;
}

export interface SlotInfo {
  plugin: string;
  database: string;
  active: boolean;
  activePid: number | null;
  confirmedFlushLsn: string | null;
  restartLsn: string | null;
}

export interface WalStats {
  currentLsn: string;
  confirmedFlushLsn: string | null;
  retainedBytes: number;
  lagBytes: number;
}

export class PgControl {
  private constructor(private readonly client: pg.Client) {}

  static async connect(url: string, slot: string): Promise<PgControl> {
    const client = new pg.Client(pgClientConfig(url, `engage-cdc:${slot}`));
    client.on('error', () => undefined); // surfaced by the next query
    await client.connect();
    return new PgControl(client);
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => undefined);
  }

  async query(sql: string, params: unknown[] = []): Promise<Array<Record<string, string | null>>> {
    return (await this.client.query(sql, params)).rows as Array<Record<string, string | null>>;
  }

  /** Session advisory lock naming the slot: held while this CDC runs, released when its session ends
   *  (also on SIGKILL, when the server sees the socket close). Returns the holder's pid if taken. */
  async tryLockSlot(slot: string): Promise<{ locked: true } | { locked: false; holderPid: number | null }> {
    const [row] = await this.query('SELECT pg_try_advisory_lock($1, hashtext($2)) AS ok', [LOCK_CLASS, slot]);
    if (row?.ok === 't') return { locked: true };
    const [holder] = await this.query(
      `SELECT pid FROM pg_locks
        WHERE locktype = 'advisory' AND granted AND classid = $1::int4::oid AND objid = hashtext($2)::oid AND objsubid = 2
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      [LOCK_CLASS, slot],
    );
    return { locked: false, holderPid: holder?.pid ? Number(holder.pid) : null };
  }

  async databaseName(): Promise<string> {
    const [row] = await this.query('SELECT current_database() AS db');
    return row?.db ?? '';
  }

  /** Creates the publication over the two source tables when missing; warns when an existing one
   *  lacks one of them (its changes would never be captured). */
  async ensurePublication(name: string, tables: readonly string[], log: Logger): Promise<void> {
    const [exists] = await this.query('SELECT 1 AS x FROM pg_publication WHERE pubname = $1', [name]);
    if (!exists) {
      const present = await this.query(
        `SELECT relname FROM pg_class WHERE relkind IN ('r','p') AND relnamespace = 'public'::regnamespace AND relname = ANY($1)`,
        [tables],
      );
      if (present.length !== tables.length) {
        throw new PipelineError(
          'SERVICE_MISCONFIGURED',
          `cannot create publication ${name}: table(s) ${tables.filter((t) => !present.some((p) => p.relname === t)).join(', ')} missing in the database (apply sql/init.sql)`,
        );
      }
      await this.query(
        `CREATE PUBLICATION ${pgIdent(name)} FOR TABLE ${tables.map((t) => `public.${pgIdent(t)}`).join(', ')}`,
      ).catch((err: unknown) => {
        if ((err as { code?: string }).code !== '42710') throw err; // created concurrently
      });
      log.info({ publication: name, tables }, 'publication created');
      return;
    }
    const published = await this.query('SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1', [
      name,
    ]);
    const missing = tables.filter((t) => !published.some((p) => p.schemaname === 'public' && p.tablename === t));
    if (missing.length > 0)
      log.warn(
        { publication: name, missing },
        `publication ${name} does not include ${missing.join(', ')}: those changes will not be captured`,
      );
  }

  /** Logs each table's REPLICA IDENTITY and what it means for the change events. */
  async reportReplicaIdentity(tables: readonly string[], log: Logger): Promise<void> {
    const rows = await this.query(
      `SELECT relname, relreplident FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relname = ANY($1)`,
      [tables],
    );
    for (const r of rows)
      log.info(
        { table: r.relname, replica_identity: r.relreplident },
        replicaIdentityMeaning(r.relname ?? '?', r.relreplident ?? 'd'),
      );
  }

  async slotInfo(slot: string): Promise<SlotInfo | null> {
    const [row] = await this.query(
      'SELECT plugin, database, active, active_pid, confirmed_flush_lsn, restart_lsn FROM pg_replication_slots WHERE slot_name = $1',
      [slot],
    );
    if (!row) return null;
    return {
      plugin: row.plugin ?? '',
      database: row.database ?? '',
      active: row.active === 't',
      activePid: row.active_pid ? Number(row.active_pid) : null,
      confirmedFlushLsn: row.confirmed_flush_lsn ?? null,
      restartLsn: row.restart_lsn ?? null,
    };
  }

  async dropSlot(slot: string): Promise<void> {
    await this.query('SELECT pg_drop_replication_slot($1)', [slot]);
  }

  /** Primary key columns of a relation, in key order. */
  async primaryKey(relationOid: number): Promise<string[]> {
    const rows = await this.query(
      `SELECT a.attname FROM pg_index i
         CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = $1 AND i.indisprimary ORDER BY k.ord`,
      [relationOid],
    );
    return rows.map((r) => r.attname ?? '');
  }

  /** A transactional logical message: travels through the slot like any transaction, so the CDC
   *  can confirm an LSN on a database where nothing else changes. */
  async emitHeartbeat(): Promise<void> {
    await this.query(`SELECT pg_logical_emit_message(true, '${HEARTBEAT_PREFIX}', now()::text)`);
  }

  async walStats(slot: string): Promise<WalStats | null> {
    const [row] = await this.query(
      `SELECT pg_current_wal_lsn() AS cur, confirmed_flush_lsn AS flush,
              pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn) AS retained,
              pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn) AS lag
         FROM pg_replication_slots WHERE slot_name = $1`,
      [slot],
    );
    if (!row?.cur) return null;
    return {
      currentLsn: row.cur,
      confirmedFlushLsn: row.flush ?? null,
      retainedBytes: Number(row.retained ?? 0),
      lagBytes: Number(row.lag ?? 0),
    };
  }
}

export function pgIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function replicaIdentityMeaning(table: string, ident: string): string {
  switch (ident) {
    case 'f':
      return `${table}: REPLICA IDENTITY FULL — updates and deletes carry the complete before image; unchanged TOAST values are filled from it`;
    case 'n':
      return `${table}: REPLICA IDENTITY NOTHING — updates carry before=null and deletes cannot be captured (PostgreSQL rejects them on a published table); unchanged TOAST values appear as "__debezium_unavailable_value"`;
    case 'i':
      return `${table}: REPLICA IDENTITY USING INDEX — updates carry before=null (unless the key changes); deletes carry only the index columns in before; unchanged TOAST values appear as "__debezium_unavailable_value"`;
    default:
      return `${table}: REPLICA IDENTITY DEFAULT — updates carry before=null (unless the key changes); deletes carry only the primary key in before (other columns null); unchanged TOAST values in updates appear as "__debezium_unavailable_value". ALTER TABLE ${table} REPLICA IDENTITY FULL gives full before images`;
  }
}
