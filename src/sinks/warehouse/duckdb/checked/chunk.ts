import bindings, { type Vector } from '@duckdb/node-bindings';
import { DuckDBDataChunk, DuckDBTypeId, type DuckDBAppender, type DuckDBType } from '@duckdb/node-api';
import { PipelineError } from '../../../../core/errors.js';
import type { SinkRecord } from '../../../../core/sink-contract.js';
import { commit, int64Of, MAX_ROWS, putInt64, Scratch, writeStringLists, writeStrings } from './vectors.js';
import { FACT_TABLE, FACT_VALUES, writtenColumns, type CellValue, type LogicalType } from '../../schema.js';

/**
 * The DuckDB bulk path for fact rows: the batch is written column by column into data chunks of
 * DuckDB's vector size (2,048 rows) in DuckDB's own in-memory formats (checked/vectors.ts) and each
 * chunk is handed to the Appender — DuckDB parses and casts nothing, and JS makes one copy call
 * per column and chunk plus one call per string longer than 12 bytes.
 *
 * The Appender writes by position: the fact table's columns must be in schema.ts order, which
 * `createTablesSql` guarantees and added columns keep (ALTER TABLE ADD COLUMN appends; schema.ts
 * adds new columns at the end). The sink checks the order at start, and `appendFactRows` checks
 * each column's physical type against its logical type.
 */

const INSTANT = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|([+-])(\d{2}):?(\d{2})?)$/;
/** The processor's own form: milliseconds or microseconds, UTC ("2024-06-01T10:00:00.000Z"). */
const COMMON_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}(\d{3})?Z$/;

/** Microseconds since the epoch of an ISO-8601 instant, keeping microsecond digits (Date keeps ms). */
export function isoToMicros(text: string): bigint {
  const m = INSTANT.exec(text);
  if (!m) throw new PipelineError('SINK_REJECTED', `not an ISO-8601 instant: ${JSON.stringify(text)}`);
  const [, y, mo, d, h, mi, s, frac, zone, sign, oh, om] = m;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s ?? 0));
  if (!Number.isFinite(ms))
    throw new PipelineError('SINK_REJECTED', `not an ISO-8601 instant: ${JSON.stringify(text)}`);
  const micros = BigInt(ms) * 1000n + BigInt(((frac ?? '') + '000000').slice(0, 6));
  const offsetMinutes = zone === 'Z' ? 0 : (sign === '-' ? -1 : 1) * (Number(oh) * 60 + Number(om ?? 0));
  return micros - BigInt(offsetMinutes) * 60_000_000n;
}

/** Days since 1970-01-01 of a YYYY-MM-DD date. */
export function dateToDays(text: string): number {
  const ms = Date.parse(`${text}T00:00:00Z`);
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text) || !Number.isFinite(ms))
    throw new PipelineError('SINK_REJECTED', `not a date: ${JSON.stringify(text)}`);
  return ms / 86_400_000;
}

/** `isoToMicros` as a number when it is a safe integer (every instant of years 1685–2254), without BigInt for the common form. */
export function instantMicros(text: string): number | bigint {
  if (COMMON_INSTANT.test(text)) {
    const ms = Date.parse(text.length === 24 ? text : `${text.slice(0, 23)}Z`);
    const micros = ms * 1000 + (text.length === 24 ? 0 : Number(text.slice(23, 26)));
    if (Number.isSafeInteger(micros)) return micros;
  }
  const b = isoToMicros(text);
  return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
}

/** The physical DuckDB type each logical type is stored as. */
const TYPE_IDS: Record<LogicalType, DuckDBTypeId> = {
  string: DuckDBTypeId.VARCHAR,
  json: DuckDBTypeId.VARCHAR,
  int64: DuckDBTypeId.BIGINT,
  float64: DuckDBTypeId.DOUBLE,
  timestamp: DuckDBTypeId.TIMESTAMP_TZ,
  date: DuckDBTypeId.DATE,
  string_list: DuckDBTypeId.LIST,
};

/**
 * One column's values into `vector`. Timestamps and dates are parsed through `memo` (per column and
 * batch: publish times, hours and dates repeat across rows, so each distinct text is parsed once).
 */
function writeColumn(
  vector: Vector,
  type: LogicalType,
  values: readonly CellValue[],
  n: number,
  s: Scratch,
  memo: Map<string, number | bigint>,
): void {
  switch (type) {
    case 'string':
    case 'json':
      return writeStrings(vector, s, values as ReadonlyArray<string | null>, n);
    case 'string_list':
      return writeStringLists(vector, values as ReadonlyArray<string[] | null>, n);
    case 'float64':
      s.resetValidity(n);
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (v === null || v === undefined) s.setNull(i);
        else s.f64[i] = v as number;
      }
      return commit(vector, s, n, 8);
    case 'date':
      s.resetValidity(n);
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (v === null || v === undefined) {
          s.setNull(i);
          continue;
        }
        let days = memo.get(v as string);
        if (days === undefined) memo.set(v as string, (days = dateToDays(v as string)));
        s.i32[i] = days as number;
      }
      return commit(vector, s, n, 4);
    default:
      // int64 and timestamp (microseconds): both 8-byte integers
      s.resetValidity(n);
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (v === null || v === undefined) {
          s.setNull(i);
        } else if (type === 'int64') {
          putInt64(s, i, typeof v === 'string' ? int64Of(v) : (v as number));
        } else {
          let micros = memo.get(v as string);
          if (micros === undefined) {
            micros = instantMicros(v as string);
            if (memo.size < 4096) memo.set(v as string, micros);
          }
          putInt64(s, i, micros);
        }
      }
      return commit(vector, s, n, 8);
  }
}

/**
 * Appends the fact rows of `records` (loaded_at = `loadedAtMicros`) into `appender`, which must
 * be an appender of the fact table inside the caller's transaction.
 */
export function appendFactRows(appender: DuckDBAppender, records: readonly SinkRecord[], loadedAtMicros: bigint): void {
  const cols = writtenColumns(FACT_TABLE);
  const types: DuckDBType[] = Array.from({ length: appender.columnCount }, (_, i) => appender.columnType(i));
  if (types.length !== cols.length + 1) {
    throw new PipelineError(
      'SERVICE_MISCONFIGURED',
      `${FACT_TABLE.name} has ${types.length} columns, the schema ${cols.length + 1}`,
    );
  }
  const logical: LogicalType[] = [...cols.map((c) => c.type), 'timestamp'];
  logical.forEach((t, c) => {
    if (types[c]?.typeId !== TYPE_IDS[t])
      throw new PipelineError(
        'SERVICE_MISCONFIGURED',
        `${FACT_TABLE.name} column ${c + 1} is ${String(types[c])}, the schema says ${t}`,
      );
  });
  const s = new Scratch();
  const memos = logical.map(() => new Map<string, number | bigint>());
  const values = new Array<CellValue>(MAX_ROWS);
  const loadedAt = Number(loadedAtMicros);
  // One chunk, reset between uses: the Appender copies what it is given.
  const chunk = DuckDBDataChunk.create(types);
  for (let start = 0; start < records.length; start += MAX_ROWS) {
    const n = Math.min(MAX_ROWS, records.length - start);
    if (start > 0) chunk.reset();
    chunk.rowCount = n;
    for (let c = 0; c < cols.length; c++) {
      const get = (FACT_VALUES[c] as (typeof FACT_VALUES)[number])[1];
      for (let i = 0; i < n; i++) values[i] = get(records[start + i] as SinkRecord);
      writeColumn(
        bindings.data_chunk_get_vector(chunk.chunk, c),
        logical[c] as LogicalType,
        values,
        n,
        s,
        memos[c] as Map<string, number | bigint>,
      );
    }
    s.resetValidity(n);
    for (let i = 0; i < n; i++) putInt64(s, i, loadedAt);
    commit(bindings.data_chunk_get_vector(chunk.chunk, cols.length), s, n, 8);
    appender.appendDataChunk(chunk);
  }
  appender.flushSync();
}
