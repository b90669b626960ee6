import pg from 'pg';
import type { Protect, Pseudonymiser } from '../../core/pseudonym.js';
import { PSEUDONYM_SQL_MIN_VERSION, pseudonymSql, setPseudonymKey } from '../../core/pseudonym-sql.js';
import { pgClientConfig, pgIdent } from '../pg-control.js';
import type { Tuple } from '../pgoutput-rows.js';
import { OID } from '../render.js';
import type { SnapshotLayout } from '../snapshot.js';
import { RowJson } from '../row-json.js';
import { WATERMARK_PREFIX, type SnapshotTask, type Watermark } from './progress.js';
import { copyOutLines } from './copy-out.js';
import { copyTextRow } from './copy-text.js';
import { xid32, type SnapshotVisibility } from './watermark-window.js';

/**
 * The incremental snapshot's PostgreSQL side, on a connection of its own: a chunk is
 *
 *   L: pg_logical_emit_message(true, WATERMARK_PREFIX, {run, chunk, kind: low})   (autocommit)
 *   BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; pg_current_snapshot(); SELECT * FROM t LIMIT 0
 *                                                  -- S: xmin, xmax, in-progress xids; the columns
 *     COPY (SELECT * FROM t WHERE key > last_key AND key <= max_key [AND (where)]
 *           ORDER BY key LIMIT n) TO STDOUT
 *   COMMIT
 *   H: pg_logical_emit_message(true, WATERMARK_PREFIX, {run, chunk, kind: high}) (autocommit)
 *
 * The watermarks are transactional messages: each is a tiny transaction of its own, delivered by
 * pgoutput between BEGIN and COMMIT at its commit's place in the stream — the order the stream
 * already follows — so the chunk is written inside H's transaction, on a PostgreSQL commit
 * boundary, and a replayed H (after a restart) is skipped like any transaction Kafka holds.
 *
 * Rows come back as COPY text — each value's text form, as the stream's (the session options of
 * every CDC connection) — and are rendered with the same RowJson as the stream's rows, so a chunk
 * row's key is the stream's key. COPY takes no bind parameters: the keys are quoted literals.
 */

export interface ChunkRow {
  key: string | null;
  after: string;
}

export interface Chunk {
  rows: ChunkRow[];
  /** The last row's primary key (text values), null for an empty chunk. */
  lastKey: string[] | null;
  /** The table's largest key (read with the first chunk), null for an empty table. */
  maxKey: string[] | null;
  rowsEstimate: number | null;
  snapshot: SnapshotVisibility;
  /** True when the chunk came back short: the task is finished with it. */
  last: boolean;
  /** The rows' columns and the primary key (empty for an empty chunk). */
  layout: Pick<SnapshotLayout, 'columns' | 'primaryKey'>;
}

const NO_LAYOUT = { columns: [], primaryKey: [] };

/**
 * Rows rendered are joined into one flat string per this many, and held as slices of it: a
 * rendered row is a rope of a few dozen small strings, and a chunk's ropes, alive until the
 * stream reaches its H, were copied by every young-generation GC meanwhile — measured, GC was a
 * third of the reader's time, and flattening cut its CPU per row from ~10.6 to ~5.9 µs.
 */
const FLAT_ROWS = 256;

/** `rows[from…]` = the keys and rows given, as slices of one flat string each (JSON text holds no raw newline). */
function flatten(keys: Array<string | null>, afters: string[], rows: ChunkRow[], from: number): void {
  const flatAfters = afters.join('\n').split('\n');
  const flatKeys = keys.includes(null) ? keys : keys.join('\n').split('\n');
  for (let j = 0; j < flatAfters.length; j++)
    rows[from + j] = { key: flatKeys[j] ?? null, after: flatAfters[j] as string };
}

interface KeyColumn {
  name: string;
  type: string;
}

export class ChunkReader {
  private readonly keys = new Map<string, KeyColumn[]>();

  private constructor(
    private readonly client: pg.Client,
    private readonly pii: Pseudonymiser | undefined,
    /** The session holds the pseudonym key (core/pseudonym-sql.ts): tagged columns are hashed by PostgreSQL. */
    private readonly sqlPseudonyms: boolean,
  ) {}

  /**
   * `pii`: the tagged columns' pseudonyms (PII_FIELDS; absent: values as they are), made by
   * PostgreSQL when `inPostgres` (and the server has sha256: 11+), else here.
   */
  static async connect(url: string, slot: string, pii?: Pseudonymiser, inPostgres = true): Promise<ChunkReader> {
    const client = new pg.Client(pgClientConfig(url, `engage-cdc-snapshot:${slot}`));
    client.on('error', () => undefined); // surfaced by the next query
    await client.connect();
    // The watermarks' commits need not wait for their WAL flush: their order in the WAL is fixed at
    // commit either way, and a crash that loses one ends the session, which starts over from the
    // committed position. (Measured: the flush was ~30 % of a chunk's time on a loaded machine.)
    await client.query('SET synchronous_commit TO off');
    // Tagged columns are pseudonymised by PostgreSQL in the chunk's COPY: the raw values stay in the
    // server, and the HMAC (~3–5 µs a row, a fifth of the reader's CPU with a distinct user per row)
    // runs in its backend instead of on this process's one thread, which every chunk row crosses.
    const key = pii?.active && inPostgres ? pii.currentKey : undefined;
    let sqlPseudonyms = false;
    if (key) {
      const v = await client.query<{ v: number }>(`SELECT current_setting('server_version_num')::int AS v`);
      if ((v.rows[0]?.v ?? 0) >= PSEUDONYM_SQL_MIN_VERSION) {
        await setPseudonymKey(client, key);
        sqlPseudonyms = true;
      }
    }
    return new ChunkReader(client, pii, sqlPseudonyms);
  }

  /** True when PostgreSQL makes the tagged columns' pseudonyms in this reader's chunks. */
  get pseudonymsInPostgres(): boolean {
    return this.sqlPseudonyms;
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => undefined);
  }

  async watermark(w: Watermark): Promise<void> {
    await this.client.query('SELECT pg_logical_emit_message(true, $1, $2)', [WATERMARK_PREFIX, JSON.stringify(w)]);
  }

  /**
   * Reads the task's next chunk of `limit` rows (after `last_key`, up to `max_key`; the first chunk
   * reads `max_key`) between its watermarks' transactions. The rows come as COPY text
   * (copy-out.ts: pg-copy-streams, one string per row) rendered straight to JSON text, rather than
   * node-postgres's per-row messages and arrays; the chunk's columns are the LIMIT 0 query's, in the same
   * transaction (its lock keeps them until the COPY is done).
   */
  async read(task: SnapshotTask, limit: number): Promise<Chunk> {
    const key = await this.keyColumns(task.table);
    const relation = qualified(task.table);
    const cols = key.map((k) => pgIdent(k.name)).join(', ');
    const literals = (values: string[]) =>
      values.map((v, i) => `${this.client.escapeLiteral(v)}::${key[i]?.type}`).join(', ');
    try {
      // One round trip: the transaction, its snapshot S, and the columns (RowDescription only).
      const opened = (await this.client.query(
        `BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;
       SELECT pg_snapshot_xmin(s)::text AS xmin, pg_snapshot_xmax(s)::text AS xmax,
              array_to_string(ARRAY(SELECT pg_snapshot_xip(s)::text), ',') AS xip FROM pg_current_snapshot() s;
       SELECT * FROM ${relation} LIMIT 0`,
      )) as unknown as [pg.QueryResult, pg.QueryResult<{ xmin: string; xmax: string; xip: string }>, pg.QueryResult];
      const snap = opened[1].rows[0];
      const fields = opened[2].fields;
      let maxKey = task.max_key;
      let rowsEstimate = task.rows_estimate;
      if (task.chunk === 0 && maxKey === null) {
        const top = await this.client.query<Tuple>({
          text: `SELECT ${cols} FROM ${relation} ORDER BY ${cols} DESC LIMIT 1`,
          rowMode: 'array',
        });
        maxKey = top.rows[0] ? top.rows[0].map((v) => String(v)) : null;
        const est = await this.client.query<{ n: string }>(
          `SELECT greatest(reltuples, 0)::bigint::text AS n FROM pg_class WHERE oid = $1::regclass`,
          [relation],
        );
        rowsEstimate = Number(est.rows[0]?.n ?? 0);
      }
      const snapshot: SnapshotVisibility = {
        xmin: xid32(snap?.xmin ?? '0'),
        xmax: xid32(snap?.xmax ?? '0'),
        xip: new Set(
          (snap?.xip ?? '')
            .split(',')
            .filter((x) => x !== '')
            .map(xid32),
        ),
      };
      if (maxKey === null) {
        await this.client.query('COMMIT');
        return { rows: [], lastKey: null, maxKey, rowsEstimate, snapshot, last: true, layout: NO_LAYOUT };
      }
      const conds: string[] = [];
      if (task.last_key) conds.push(`(${cols}) > (${literals(task.last_key)})`);
      conds.push(`(${cols}) <= (${literals(maxKey)})`);
      if (task.where) conds.push(`(${task.where})`);
      const columns = fields.map((f) => ({ name: f.name, typeOid: f.dataTypeID }));
      const names = columns.map((c) => c.name);
      const { select, protect } = this.selectList(task.table, columns, key);
      const lines = await copyOutLines(
        this.client,
        `COPY (SELECT ${select} FROM ${relation} WHERE ${conds.join(' AND ')} ORDER BY ${cols} LIMIT ${limit}) TO STDOUT`,
      );
      await this.client.query('COMMIT');
      const json = new RowJson(
        columns,
        key.map((k) => k.name),
        protect,
      );
      const index = key.map((k) => names.indexOf(k.name));
      const rows = new Array<ChunkRow>(lines.length);
      let lastRaw: Tuple | undefined;
      const keys: Array<string | null> = [];
      const afters: string[] = [];
      for (let i = 0; i < lines.length; i++) {
        const raw = (lastRaw = copyTextRow(lines[i] as string, columns.length));
        keys.push(json.key(raw));
        afters.push(json.row(raw));
        if (afters.length === FLAT_ROWS || i === lines.length - 1) {
          flatten(keys, afters, rows, i + 1 - afters.length);
          keys.length = 0;
          afters.length = 0;
        }
      }
      const lastKey = lastRaw ? index.map((i) => String(lastRaw[i])) : task.last_key;
      const layout = { columns, primaryKey: key.map((k) => k.name) };
      return { rows, lastKey, maxKey, rowsEstimate, snapshot, last: lines.length < limit, layout };
    } catch (err) {
      await this.client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  /**
   * The chunk's select list, and the tagged columns left for RowJson to protect. A tagged column is
   * computed as its pseudonym by PostgreSQL (the session holds the key) unless it is part of the
   * primary key — the last row's key must be the raw value the next chunk is read after — then it
   * is hashed here, as the stream's values are; both give the same text (test/cdc/snapshot-pii).
   */
  private selectList(
    table: string,
    columns: ReadonlyArray<{ name: string; typeOid: number }>,
    key: readonly KeyColumn[],
  ): { select: string; protect: ReadonlyMap<string, Protect> | undefined } {
    const tagged = this.pii?.columns(
      table,
      columns.map((c) => c.name),
    );
    const pii = this.pii;
    if (!tagged || !pii || !this.sqlPseudonyms) return { select: '*', protect: tagged };
    const keyNames = new Set(key.map((k) => k.name));
    const keyId = pii.currentKey?.id as string;
    const protect = new Map([...tagged].filter(([name]) => keyNames.has(name)));
    const select = columns
      .map((c) => {
        const ident = pgIdent(c.name);
        if (!tagged.has(c.name) || keyNames.has(c.name)) return ident;
        // A uuid's text can never be shaped as a pseudonym: no check for one already made.
        return `${pseudonymSql(`${ident}::text`, keyId, pii.keyIds, c.typeOid !== OID.uuid)} AS ${ident}`;
      })
      .join(', ');
    return { select, protect: protect.size > 0 ? protect : undefined };
  }

  /** The table's primary key columns and their SQL types, in key order (cached). */
  private async keyColumns(table: string): Promise<KeyColumn[]> {
    const known = this.keys.get(table);
    if (known) return known;
    const res = await this.client.query<{ name: string; type: string }>(
      `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type FROM pg_index i
         CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY k.ord`,
      [qualified(table)],
    );
    if (res.rows.length === 0) throw new Error(`table ${table} has no primary key: it cannot be read in chunks`);
    this.keys.set(table, res.rows);
    return res.rows;
  }
}

/** `schema.table` → `"schema"."table"`. */
export function qualified(table: string): string {
  const [schema = 'public', name = table] = table.includes('.') ? table.split('.') : ['public', table];
  return `${pgIdent(schema)}.${pgIdent(name)}`;
}
