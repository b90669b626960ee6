import { LogicalReplicationService, PgoutputPlugin } from 'pg-logical-replication';
import { ChangePipeline } from '../src/cdc/change-pipeline.js';
import { TextPgoutputPlugin, type StreamMessage } from '../src/cdc/pgoutput-rows.js';
import { OID, type RawValue } from '../src/cdc/render.js';
import type { TxnWriter } from '../src/cdc/txn-writer.js';
import { createLogger } from '../src/core/logger.js';
import type { BenchResult } from './types.js';

/**
 * The CDC's per-row CPU stages without I/O (no stack needed): the measurements behind the two
 * hand-written replacements in src/cdc (docs/cdc.md, Performance). One engagement_events-shaped
 * row (8 columns, ~570-byte envelope) per message, 200,000 messages per figure, µs of process CPU
 * per message:
 * - decoding an Insert message: pg-logical-replication's PgoutputPlugin (text parsers) vs
 *   pgoutput-rows.ts;
 * - dispatching a message: the library's flow control (EventEmitter2 emitAsync + two awaits per
 *   message) vs the synchronous emit replication.ts uses;
 * - the pipeline's work per row (key, row JSON, envelope, UTF-8 encoding into the writer's buffer).
 */

const N = 200_000;
const COLUMNS: Array<[string, number]> = [
  ['id', OID.int8],
  ['content_id', OID.uuid],
  ['user_id', OID.uuid],
  ['event_type', 25],
  ['event_ts', OID.timestamptz],
  ['duration_ms', OID.int4],
  ['device', 25],
  ['raw_payload', OID.jsonb],
];

const i32 = (n: number) => Buffer.from([(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
const i16 = (n: number) => Buffer.from([(n >>> 8) & 255, n & 255]);
const cstr = (s: string) => Buffer.concat([Buffer.from(s), Buffer.from([0])]);
const RELATION = Buffer.concat([
  Buffer.from('R'),
  i32(16400),
  cstr('public'),
  cstr('engagement_events'),
  Buffer.from('d'),
  i16(COLUMNS.length),
  ...COLUMNS.map(([name, oid], i) => Buffer.concat([Buffer.from([i === 0 ? 1 : 0]), cstr(name), i32(oid), i32(-1)])),
]);
const BEGIN = Buffer.concat([Buffer.from('B'), Buffer.from([0, 0, 0, 1, 0x50, 0, 0, 0]), Buffer.alloc(8), i32(777)]);

function insert(i: number): Buffer {
  const values: RawValue[] = [
    String(1_000_000 + i),
    '0b8f6c2e-3d4a-4f5b-9c1d-2e3f4a5b6c7d',
    '11111111-2222-4333-8444-555555555555',
    'play',
    '2026-11-27 03:10:11.123456+00',
    String((i * 37) % 600_000),
    'ios',
    `{"app": "4.2.1", "session": ${i % 997}}`,
  ];
  const cells = values.map((v) =>
    Buffer.concat([Buffer.from('t'), i32(Buffer.byteLength(v ?? '')), Buffer.from(v ?? '')]),
  );
  return Buffer.concat([Buffer.from('I'), i32(16400), Buffer.from('N'), i16(values.length), ...cells]);
}

/** µs of process CPU per call of `fn` over N calls (after one warm-up pass). */
async function perCall(fn: (i: number) => unknown): Promise<number> {
  for (let i = 0; i < N; i++) await fn(i);
  const c0 = process.cpuUsage();
  for (let i = 0; i < N; i++) await fn(i);
  const c = process.cpuUsage(c0);
  return Math.round(((c.user + c.system) / N) * 100) / 100;
}

/** The same without awaiting (synchronous stages). */
function perCallSync(fn: (i: number) => unknown): number {
  for (let i = 0; i < N; i++) fn(i);
  const c0 = process.cpuUsage();
  for (let i = 0; i < N; i++) fn(i);
  const c = process.cpuUsage(c0);
  return Math.round(((c.user + c.system) / N) * 100) / 100;
}

export async function run(): Promise<BenchResult[]> {
  const messages = Array.from({ length: 1000 }, (_, i) => insert(i));
  const theirs = new PgoutputPlugin({ protoVersion: 1, publicationNames: ['p'] });
  const ours = new TextPgoutputPlugin({ protoVersion: 1, publicationNames: ['p'] });
  const rel = theirs.parse(RELATION);
  if (rel.tag === 'relation') for (const c of rel.columns) c.parser = (raw: unknown) => raw;
  ours.parseMessage(RELATION);
  let sink = 0;
  const decodeLibrary = perCallSync((i) => (sink += theirs.parse(messages[i % 1000] as Buffer).tag.length));
  const decodeOurs = perCallSync((i) => (sink += ours.parseMessage(messages[i % 1000] as Buffer).tag.length));

  // The library's service is the EventEmitter2 its flow control awaits (never connected here).
  const emitter = new LogicalReplicationService({});
  emitter.on('data', () => undefined);
  const acknowledge = async () => undefined;
  const dispatchLibrary = await perCall(async () => {
    await emitter.emitAsync('data', '0/1', 1);
    await acknowledge();
  });
  const dispatchSync = perCallSync(() => emitter.emit('data', '0/1', 1));

  const scratch = Buffer.allocUnsafe(1 << 20);
  const writer = {
    full: false,
    size: 0,
    add: (_t: string, _k: string | null, v: string | null) => (sink += v === null ? 0 : scratch.write(v, 0, 'utf8')),
  } as unknown as TxnWriter;
  const pipeline = new ChangePipeline({
    slot: 's',
    serverName: 'engage',
    db: 'db',
    positionTopic: 'p',
    routes: { 'public.engagement_events': 'events' },
    maxBatchRows: Number.MAX_SAFE_INTEGER,
    splitRows: 1_000_000,
    commitIntervalMs: 3_600_000,
    skipBelow: 0n,
    snapshot: null,
    writer,
    maxEventBytes: 1_000_000,
    onTruncated: () => undefined,
    primaryKey: () => Promise.resolve(['id']),
    ack: () => undefined,
    onCommitted: () => undefined,
    onFail: (err) => {
      throw err;
    },
    log: createLogger('warn', 'cdc-stages'),
  });
  pipeline.handle('0/1', ours.parseMessage(BEGIN));
  await pipeline.handle('0/2', ours.parseMessage(RELATION));
  const parsed: StreamMessage[] = messages.map((m) => ours.parseMessage(m));
  const lsns = parsed.map((_, i) => `1/5000${i.toString(16)}`);
  const render = perCallSync((i) => pipeline.handle(lsns[i % 1000] as string, parsed[i % 1000] as StreamMessage));
  await pipeline.drain().catch(() => undefined);
  if (sink === 0) throw new Error('nothing measured');

  return [
    { name: 'decode Insert: pg-logical-replication PgoutputPlugin', value: decodeLibrary, unit: 'µs/row' },
    { name: 'decode Insert: pgoutput-rows.ts (column-order tuple)', value: decodeOurs, unit: 'µs/row' },
    { name: 'dispatch: library flow control (emitAsync + 2 awaits)', value: dispatchLibrary, unit: 'µs/msg' },
    { name: 'dispatch: synchronous emit (replication.ts)', value: dispatchSync, unit: 'µs/msg' },
    { name: 'pipeline per row: key + row JSON + envelope + UTF-8 encode', value: render, unit: 'µs/row' },
  ];
}
