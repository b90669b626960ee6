import { createRequire } from 'node:module';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import descriptor from 'protobufjs/ext/descriptor/index.js';
import type { FakeBigQuery, Row } from './fake-bigquery.js';
import { RowChecker, type LazyRow } from './fake-bigquery-rows.js';

/**
 * A local fake of the BigQuery Storage Write API (google.cloud.bigquery.storage.v1.BigQueryWrite),
 * a gRPC server on 127.0.0.1 built from the protos `@google-cloud/bigquery-storage` ships, for the
 * warehouse's storage backend (src/sinks/warehouse/bigquery/). Tables are those of the REST fake
 * it is given (test/helpers/fake-bigquery.ts): a committed row lands in that fake's table, where
 * its emulated queries (the offsets read) and the tests see it.
 *
 * The stream semantics it keeps, as the API reference states them:
 * - CreateWriteStream: PENDING or COMMITTED on an existing table (NOT_FOUND otherwise); the
 *   `_default` stream of every table is COMMITTED and takes no offsets.
 * - AppendRows (bidi): one response per request, in order; the writer schema comes with the first
 *   request of a connection (a proto2 DescriptorProto) and rows are read with it. With an
 *   offset: ALREADY_EXISTS when it is below the stream's end, OUT_OF_RANGE when beyond it (the
 *   rows are not appended). A row that misses a REQUIRED column or does not fit its type fails the
 *   whole request with INVALID_ARGUMENT and `row_errors` naming it (fake-bigquery-rows.ts: the
 *   checks, on the wire; a row is decoded when a table is read). A finalized or committed
 *   stream refuses appends (INVALID_ARGUMENT, "stream is finalized").
 * - PENDING rows are invisible until BatchCommitWriteStreams; COMMITTED rows on append.
 * - FinalizeWriteStream: answers the row count; again on a finalized stream, the same count.
 * - BatchCommitWriteStreams: every stream must be PENDING, finalized, of the parent table and not
 *   committed, else nothing is committed (stream_errors, as the API answers). All or nothing.
 * - GetWriteStream: type, create time and commit time (set once committed), row count.
 * Faults: `fail(method, …)` answers a gRPC status instead of serving (before doing anything), and
 * `beforeCall` lets a test stop a writer between two calls (crash injection).
 */

const require = createRequire(import.meta.url);
const PROTOS = require('@google-cloud/bigquery-storage/build/protos/protos.json') as protobuf.INamespace;
const { DescriptorProto } = descriptor as unknown as { DescriptorProto: { fromObject(o: object): protobuf.Message } };
const Type = protobuf.Type as unknown as { fromDescriptor(d: protobuf.Message): protobuf.Type };

export type StorageMethod =
  'CreateWriteStream' | 'AppendRows' | 'FinalizeWriteStream' | 'BatchCommitWriteStreams' | 'GetWriteStream';

const PENDING = 2;
const COMMITTED = 1;

export interface FakeStream {
  name: string;
  /** dataset.table */
  table: string;
  type: number;
  rows: LazyRow[];
  finalized: boolean;
  committedAtMs: number | null;
  createdAtMs: number;
}

interface Fault {
  method: StorageMethod;
  code: grpc.status;
  message: string;
  times: number;
  after: number;
  /** AppendRows only: append the rows, then answer the error (an answer lost on the way back). */
  afterApply: boolean;
}

type Call = { method: StorageMethod; stream?: string; rows?: number };
type Timestamp = { seconds: string; nanos: number };

const ts = (ms: number): Timestamp => ({ seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 });

export class FakeBigQueryStorage {
  readonly streams = new Map<string, FakeStream>();
  readonly calls: Call[] = [];
  /** Runs before a call is served; a throw answers the call with INTERNAL (the test's own fault). */
  beforeCall: ((call: Call) => void | Promise<void>) | null = null;
  private readonly faults: Fault[] = [];
  private server!: grpc.Server;
  private next = 0;
  url = '';

  private constructor(private readonly rest: FakeBigQuery) {}

  static async start(rest: FakeBigQuery): Promise<FakeBigQueryStorage> {
    const fake = new FakeBigQueryStorage(rest);
    const def = protoLoader.fromJSON(PROTOS, { longs: String, defaults: false, oneofs: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      google: { cloud: { bigquery: { storage: { v1: { BigQueryWrite: { service: grpc.ServiceDefinition } } } } } };
    };
    // AppendRows requests are limited to 10 MB by the service; grpc-js would refuse past 4 MiB.
    fake.server = new grpc.Server({ 'grpc.max_receive_message_length': 10 * 1024 * 1024 });
    fake.server.addService(pkg.google.cloud.bigquery.storage.v1.BigQueryWrite.service, fake.handlers());
    const port = await new Promise<number>((resolve, reject) =>
      fake.server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    fake.url = `http://127.0.0.1:${port}`;
    return fake;
  }

  async close(): Promise<void> {
    this.server.forceShutdown();
  }

  /** After `after` calls of `method` are served, the next `times` answer `code`. */
  fail(
    method: StorageMethod,
    opts: { code: grpc.status; message?: string; times?: number; after?: number; afterApply?: boolean },
  ): void {
    this.faults.push({
      method,
      code: opts.code,
      message: opts.message ?? `injected ${grpc.status[opts.code]}`,
      times: opts.times ?? 1,
      after: opts.after ?? 0,
      afterApply: opts.afterApply ?? false,
    });
  }

  /** A row the service refuses (INVALID_ARGUMENT with row_errors) when this returns a reason. */
  refuseRow: ((row: Row) => string | null) | null = null;

  /** Streams of `dataset.table` neither committed nor COMMITTED-typed: rows nobody can see. */
  uncommitted(table: string): FakeStream[] {
    return [...this.streams.values()].filter((s) => s.table === table && s.committedAtMs === null);
  }

  private fault(method: StorageMethod): (grpc.ServiceError & { afterApply: boolean }) | null {
    const f = this.faults.find((x) => x.method === method && x.times > 0);
    if (!f) return null;
    if (f.after > 0) {
      f.after--;
      return null;
    }
    f.times--;
    return Object.assign(error(f.code, f.message), { afterApply: f.afterApply });
  }

  /** Records the call, runs the test's hook and any injected fault; null when the call may proceed. */
  private async admit(call: Call): Promise<(grpc.ServiceError & { afterApply?: boolean }) | null> {
    this.calls.push(call);
    try {
      await this.beforeCall?.(call);
    } catch (err) {
      return error(grpc.status.INTERNAL, (err as Error).message);
    }
    return this.fault(call.method);
  }

  private tableOf(path: string): string | null {
    const m = /^projects\/[^/]+\/datasets\/([^/]+)\/tables\/([^/]+)/.exec(path);
    if (!m) return null;
    const key = `${m[1]}.${m[2]}`;
    return this.rest.tables.has(key) ? key : null;
  }

  private stream(name: string): FakeStream | null {
    const known = this.streams.get(name);
    if (known) return known;
    const table = /\/streams\/_default$/.test(name) ? this.tableOf(name) : null;
    if (!table) return null;
    const s: FakeStream = {
      name,
      table,
      type: COMMITTED,
      rows: [],
      finalized: false,
      committedAtMs: 0,
      createdAtMs: 0,
    };
    this.streams.set(name, s);
    return s;
  }

  private resource(s: FakeStream): object {
    return {
      name: s.name,
      type: s.type,
      createTime: ts(s.createdAtMs),
      ...(s.committedAtMs ? { commitTime: ts(s.committedAtMs) } : {}),
      ...(s.finalized ? { rowCount: String(s.rows.length) } : {}),
      location: 'US',
    };
  }

  /** Makes rows visible: they join the REST fake's table (converted when it is next read). */
  private publish(s: FakeStream, rows: LazyRow[]): void {
    this.rest.defer(s.table, rows);
  }

  private handlers(): grpc.UntypedServiceImplementation {
    type Unary = grpc.handleUnaryCall<Record<string, unknown>, object>;
    const unary = (
      method: StorageMethod,
      stream: (req: Record<string, unknown>) => string | undefined,
      serve: (req: Record<string, unknown>) => object,
    ) =>
      (async (call, callback) => {
        const refused = await this.admit({ method, stream: stream(call.request) });
        if (refused) return callback(refused);
        try {
          callback(null, serve(call.request));
        } catch (err) {
          callback(err as grpc.ServiceError);
        }
      }) as Unary;
    return {
      CreateWriteStream: unary(
        'CreateWriteStream',
        (r) => String(r.parent),
        (r) => {
          const table = this.tableOf(String(r.parent));
          if (!table) throw error(grpc.status.NOT_FOUND, `Requested entity was not found. Table ${String(r.parent)}`);
          const type = Number((r.writeStream as { type?: number } | undefined)?.type ?? 0);
          if (type !== PENDING && type !== COMMITTED)
            throw error(
              grpc.status.INVALID_ARGUMENT,
              `the fake serves PENDING and COMMITTED streams, not type ${type}`,
            );
          const name = `${String(r.parent)}/streams/s${++this.next}`;
          const s: FakeStream = {
            name,
            table,
            type,
            rows: [],
            finalized: false,
            committedAtMs: null,
            createdAtMs: Date.now(),
          };
          if (type === COMMITTED) s.committedAtMs = Date.now();
          this.streams.set(name, s);
          return this.resource(s);
        },
      ),
      GetWriteStream: unary(
        'GetWriteStream',
        (r) => String(r.name),
        (r) => {
          const s = this.stream(String(r.name));
          if (!s) throw error(grpc.status.NOT_FOUND, `Requested entity was not found. Stream ${String(r.name)}`);
          return this.resource(s);
        },
      ),
      FinalizeWriteStream: unary(
        'FinalizeWriteStream',
        (r) => String(r.name),
        (r) => {
          const s = this.stream(String(r.name));
          if (!s) throw error(grpc.status.NOT_FOUND, `Requested entity was not found. Stream ${String(r.name)}`);
          if (s.name.endsWith('/_default')) throw error(grpc.status.INVALID_ARGUMENT, 'cannot finalize _default');
          s.finalized = true;
          return { rowCount: String(s.rows.length) };
        },
      ),
      BatchCommitWriteStreams: unary(
        'BatchCommitWriteStreams',
        (r) => String(r.parent),
        (r) => {
          const parent = this.tableOf(String(r.parent));
          const names = (r.writeStreams ?? []) as string[];
          const streamErrors: object[] = [];
          for (const name of names) {
            const s = this.streams.get(name);
            // StorageError codes: STREAM_NOT_FOUND 3, INVALID_STREAM_TYPE 4, STREAM_ALREADY_COMMITTED 2,
            // INVALID_STREAM_STATE 5 (not finalized).
            const problem: [number, string] | null = !s
              ? [3, 'stream not found']
              : s.table !== parent
                ? [4, 'stream does not belong to the parent table']
                : s.type !== PENDING
                  ? [4, 'not a PENDING stream']
                  : s.committedAtMs !== null
                    ? [2, 'stream already committed']
                    : !s.finalized
                      ? [5, 'stream not finalized']
                      : null;
            if (problem) streamErrors.push({ code: problem[0], entity: name, errorMessage: problem[1] });
          }
          if (streamErrors.length > 0) return { streamErrors };
          const now = Date.now();
          for (const name of names) {
            const s = this.streams.get(name) as FakeStream;
            s.committedAtMs = now;
            this.publish(s, s.rows);
          }
          return { commitTime: ts(now) };
        },
      ),
      AppendRows: (call: grpc.ServerDuplexStream<Record<string, unknown>, object>) => this.appendRows(call),
    };
  }

  /** One AppendRows connection: requests served in order, one response each. */
  private appendRows(call: grpc.ServerDuplexStream<Record<string, unknown>, object>): void {
    let streamName = '';
    let rowType: protobuf.Type | null = null;
    let chain = Promise.resolve();
    call.on('data', (req: Record<string, unknown>) => {
      chain = chain.then(async () => {
        if (req.writeStream) streamName = String(req.writeStream);
        const protoRows = req.protoRows as
          { writerSchema?: { protoDescriptor?: object }; rows?: { serializedRows?: Buffer[] } } | undefined;
        if (protoRows?.writerSchema?.protoDescriptor) {
          rowType = Type.fromDescriptor(DescriptorProto.fromObject(protoRows.writerSchema.protoDescriptor));
        }
        const serialized = protoRows?.rows?.serializedRows ?? [];
        const refused = await this.admit({ method: 'AppendRows', stream: streamName, rows: serialized.length });
        const offset = req.offset as { value?: string } | undefined;
        const answer = !refused || refused.afterApply ? this.append(streamName, rowType, serialized, offset) : {};
        call.write(refused ? { error: { code: refused.code, message: refused.details } } : answer);
      });
    });
    call.on('end', () => void chain.then(() => call.end()));
    call.on('error', () => undefined);
  }

  private append(
    name: string,
    rowType: protobuf.Type | null,
    serialized: Buffer[],
    offset?: { value?: string },
  ): object {
    const refuse = (code: grpc.status, message: string, extra: object = {}) => ({ error: { code, message }, ...extra });
    const s = this.stream(name);
    if (!s) return refuse(grpc.status.NOT_FOUND, `Requested entity was not found. Stream ${name}`);
    if (!rowType)
      return refuse(grpc.status.INVALID_ARGUMENT, 'the first request of a connection carries the writer schema');
    if (s.finalized || (s.type === PENDING && s.committedAtMs !== null))
      return refuse(grpc.status.INVALID_ARGUMENT, `Stream is finalized: ${name}`);
    const isDefault = name.endsWith('/_default');
    if (offset?.value !== undefined) {
      if (isDefault) return refuse(grpc.status.INVALID_ARGUMENT, 'the _default stream takes no offsets');
      const at = Number(offset.value);
      if (at < s.rows.length)
        return refuse(
          grpc.status.ALREADY_EXISTS,
          `The offset is within stream, expected offset ${s.rows.length}, received ${at}`,
        );
      if (at > s.rows.length)
        return refuse(
          grpc.status.OUT_OF_RANGE,
          `The offset is beyond stream, expected offset ${s.rows.length}, received ${at}`,
        );
    }
    const fields = new Map(
      (this.rest.tables.get(s.table)?.resource.schema?.fields ?? []).map((f) => [f.name, f] as const),
    );
    // Checked now, as the service does; converted to the REST fake's row shape only when read.
    const checker = new RowChecker(rowType, fields);
    const rows: LazyRow[] = [];
    const rowErrors: object[] = [];
    serialized.forEach((bytes, index) => {
      try {
        checker.check(bytes);
        const row = checker.stored(bytes);
        const reason = this.refuseRow?.(row());
        if (reason) throw new Error(reason);
        rows.push(row);
      } catch (err) {
        rowErrors.push({ index: String(index), code: 1, message: (err as Error).message });
      }
    });
    if (rowErrors.length > 0)
      return refuse(grpc.status.INVALID_ARGUMENT, `Errors found while processing rows: ${rowErrors.length}`, {
        rowErrors,
      });
    const at = s.rows.length;
    s.rows.push(...rows);
    if (s.type === COMMITTED) this.publish(s, rows);
    return { appendResult: isDefault ? {} : { offset: { value: String(at) } }, writeStream: name };
  }
}

function error(code: grpc.status, message: string): grpc.ServiceError {
  return Object.assign(new Error(message), { code, details: message, metadata: new grpc.Metadata() });
}
