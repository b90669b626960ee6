import { AvroSink, isSafeLong } from './avro-sink.js';
import type { JsonCursor } from './json-cursor.js';

/**
 * The envelope's `source` block, JSON text → the Avro record `io.debezium.connector.postgresql.Source`
 * (schema.ts), for the text encoder (text-encoder.ts). Same bytes as EventConverter + avsc: fields
 * in the schema's order, `sequence`/`txId`/`lsn` null when absent, `snapshot` its default "false"
 * when absent; a value avsc would refuse makes `write` return false (the generic path reports it).
 *
 * The renderer writes every change of a transaction and table with the same serialised fixed part
 * (envelope.ts `sourcePrefix`: everything but `lsn` and `sequence`): the last such part seen is kept
 * with its Avro bytes, so a change whose text starts with it reads only `lsn` and `sequence`.
 */

interface Source {
  version: unknown;
  connector: unknown;
  name: unknown;
  ts_ms: unknown;
  snapshot: unknown;
  db: unknown;
  sequence: unknown;
  schema: unknown;
  table: unknown;
  txId: unknown;
  lsn: unknown;
}

const isLong = (v: unknown): v is number => typeof v === 'number' && !(v % 1) && isSafeLong(v);
const isVariable = (key: string) => key === 'lsn' || key === 'sequence';

/** `["null", "long"]` / `["null", "string"]`; false when avsc would refuse the value. */
function optionalLong(v: unknown, sink: AvroSink): boolean {
  if (v == null) sink.byte(0);
  else if (isLong(v)) {
    sink.byte(2);
    sink.long(v);
  } else return false;
  return true;
}

function optionalString(v: unknown, sink: AvroSink): boolean {
  if (v == null) sink.byte(0);
  else if (typeof v === 'string') {
    sink.byte(2);
    sink.string(v);
  } else return false;
  return true;
}

/** version … db, in the schema's order (everything before `sequence`). */
function writeHead(s: Source, sink: AvroSink): boolean {
  const { version, connector, name, ts_ms, snapshot, db } = s;
  if (typeof version !== 'string' || typeof connector !== 'string' || typeof name !== 'string') return false;
  if (!isLong(ts_ms) || typeof db !== 'string') return false;
  if (!(snapshot === undefined || snapshot === null || typeof snapshot === 'string')) return false;
  sink.string(version);
  sink.string(connector);
  sink.string(name);
  sink.long(ts_ms);
  // [enum-string, "null"], default "false" (what avsc writes for a missing field).
  if (snapshot === null) sink.byte(2);
  else {
    sink.byte(0);
    sink.string(snapshot ?? 'false');
  }
  sink.string(db);
  return true;
}

/** schema, table, txId (between `sequence` and `lsn`). */
function writeMiddle(s: Source, sink: AvroSink): boolean {
  if (typeof s.schema !== 'string' || typeof s.table !== 'string') return false;
  sink.string(s.schema);
  sink.string(s.table);
  return optionalLong(s.txId, sink);
}

export class SourceWriter {
  /** The last fixed part seen (`{"version":…,"txId":…,`) and its head / middle Avro bytes. */
  private cached: { text: string; head: Buffer; middle: Buffer } | undefined;
  private readonly scratch = new AvroSink();

  /** Reads the source object at the cursor and writes its record; false: not mirrored / refused. */
  write(cur: JsonCursor, sink: AvroSink): boolean {
    const start = cur.pos;
    const c = this.cached;
    // (slice + === compares as memcmp: several times faster than startsWith over ~200 characters)
    if (c !== undefined && cur.text.slice(start, start + c.text.length) === c.text) {
      cur.pos = start + c.text.length;
      const s = this.read(cur, true);
      if (s !== undefined) {
        sink.raw(c.head);
        if (!optionalString(s.sequence, sink)) return false;
        sink.raw(c.middle);
        return optionalLong(s.lsn, sink);
      }
      cur.pos = start;
    }
    if (!cur.skip('{')) return false;
    const s = this.read(cur, false);
    if (s === undefined || !writeHead(s, sink) || !optionalString(s.sequence, sink)) return false;
    if (!writeMiddle(s, sink) || !optionalLong(s.lsn, sink)) return false;
    if (this.fixedEnd > start) this.remember(cur.text.slice(start, this.fixedEnd), s);
    return true;
  }

  /** Where the last `read` saw the trailing run of `lsn` / `sequence` keys start (-1: none). */
  private fixedEnd = -1;

  /** The object's fields up to its `}`; `variableOnly`: nothing but `lsn` and `sequence` allowed. */
  private read(cur: JsonCursor, variableOnly: boolean): Source | undefined {
    const s: Source = {
      version: undefined,
      connector: undefined,
      name: undefined,
      ts_ms: undefined,
      snapshot: undefined,
      db: undefined,
      sequence: undefined,
      schema: undefined,
      table: undefined,
      txId: undefined,
      lsn: undefined,
    };
    this.fixedEnd = -1;
    if (cur.skip('}')) return s;
    do {
      const at = cur.pos;
      const key = cur.string();
      if (key === undefined || !cur.skip(':')) return undefined;
      if (isVariable(key)) {
        if (this.fixedEnd < 0) this.fixedEnd = at;
      } else if (variableOnly) return undefined;
      else this.fixedEnd = -1;
      const v = cur.scalar();
      if (v === undefined || !assign(s, key, v)) return undefined;
    } while (cur.skip(','));
    return cur.skip('}') ? s : undefined;
  }

  private remember(text: string, s: Source): void {
    const t = this.scratch;
    t.start(EMPTY, 4 * text.length + 64);
    if (!writeHead(s, t)) return;
    const head = t.take();
    t.start(EMPTY, 4 * text.length + 64);
    if (!writeMiddle(s, t)) return;
    this.cached = { text, head, middle: t.take() };
  }
}

const EMPTY = Buffer.alloc(0);

/** One field by name (false: not a Source field — the generic path decides). */
function assign(s: Source, key: string, v: unknown): boolean {
  switch (key) {
    case 'version':
      s.version = v;
      return true;
    case 'connector':
      s.connector = v;
      return true;
    case 'name':
      s.name = v;
      return true;
    case 'ts_ms':
      s.ts_ms = v;
      return true;
    case 'snapshot':
      s.snapshot = v;
      return true;
    case 'db':
      s.db = v;
      return true;
    case 'sequence':
      s.sequence = v;
      return true;
    case 'schema':
      s.schema = v;
      return true;
    case 'table':
      s.table = v;
      return true;
    case 'txId':
      s.txId = v;
      return true;
    case 'lsn':
      s.lsn = v;
      return true;
    default:
      return false;
  }
}
