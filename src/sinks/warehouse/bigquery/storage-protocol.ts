import { managedwriter, protos } from '@google-cloud/bigquery-storage';
import { PipelineError } from '../../../core/errors.js';
import { FACT_TABLE } from '../schema.js';
import { COMMIT_LOG, type CommitOutcome } from './commit-log.js';
import { appendChunks, encodeRows, protoDescriptor } from './row-encoding.js';
import { classifyStorageError, type StorageFailure, type WriterClient } from './storage-client.js';

/**
 * The exactly-once protocol of one flush (one partition's batch) on the Storage Write API:
 *
 *   1. CreateWriteStream(fact, PENDING) → F; AppendRows(F, rows, offsets 0, n1, …); FinalizeWriteStream(F)
 *      — the rows exist but nobody can see them; F is garbage unless step 2 records it.
 *   2. AppendRows(log stream L of the partition, COMMITTED, at its next offset k) the decision
 *      (topic, partition, next_offset, F) — THE commit point: visible at once, written at most once
 *      (offset k). A lost answer is settled by finalizing L: its row count says whether k is there.
 *   3. BatchCommitWriteStreams(fact, [F]) — the rows become visible; "already committed" is success.
 *
 * A crash before 2 leaves the stored offset where it was (the runtime re-reads the batch; F is
 * garbage); after 2, whoever comes next — this process retrying, or a new one reading the log
 * (commit-log.ts resolveStoredOffset) — commits F and resumes after it. BatchCommit is atomic and
 * idempotent, so F is visible once or not at all. Cross-table atomicity is not needed: the API
 * documents BatchCommitWriteStreams for the streams of one parent table only.
 *
 * Contract: calls for one partition are serialised by the caller (the runtime never has two
 * batches of a partition in flight); different partitions may flush concurrently.
 */

type Connection = Awaited<ReturnType<WriterClient['createStreamConnection']>>;

interface LogStream {
  connection: Connection;
  writer: managedwriter.Writer;
  /** The offset of the next decision in this stream. */
  next: number;
}

/** A flush past step 2's send that has not finished step 3: retried before anything else of its partition. */
interface Unsettled {
  nextOffset: string;
  factStream: string | null;
  /** Set while step 2's answer is unknown: the decision's offset in the (then abandoned) log stream. */
  ambiguousAt?: { log: LogStream; offset: number };
}

/** A flush's fact rows: how many, and their proto encoding (made while the stream is created). */
export interface FactRows {
  count: number;
  encode(): readonly Uint8Array[];
}

export interface FlushInput {
  topic: string;
  partition: number;
  nextOffset: string;
  rows: FactRows;
  writer: string;
  /**
   * False for rows without a Kafka position (a backfill's direct pages): no decision is logged,
   * the stream is committed at once (a re-sent page is absorbed by the identity dedupe).
   */
  logged: boolean;
}

export class StorageWriteProtocol {
  private readonly logs = new Map<number, LogStream>();
  private readonly unsettled = new Map<number, Unsettled>();

  constructor(
    private readonly client: WriterClient,
    private readonly tables: { fact: string; log: string },
  ) {}

  /** Stores `input` exactly once (or throws a classified PipelineError; calling again is safe). */
  async flush(input: FlushInput): Promise<void> {
    const prior = await this.settle(input.partition);
    if (prior === input.nextOffset) return; // a previous attempt of this very batch was decided
    const factStream = input.rows.count > 0 ? await this.appendFact(input.rows) : null;
    if (!input.logged) {
      if (factStream) await this.commit(factStream);
      return;
    }
    const log = await this.logStream(input.partition);
    const at = log.next;
    this.unsettled.set(input.partition, { nextOffset: input.nextOffset, factStream, ambiguousAt: { log, offset: at } });
    const decision = {
      topic: input.topic,
      kafka_partition: String(input.partition),
      next_offset: input.nextOffset,
      ...(factStream ? { fact_stream: factStream } : {}),
      fact_rows: String(input.rows.count),
      writer: input.writer,
      committed_at: Date.now() * 1000,
    };
    const encoded = encodeRows(COMMIT_LOG, [decision]);
    await this.result(log.writer.appendRows({ serializedRows: encoded }, at), 'commit-log append');
    log.next++;
    this.unsettled.set(input.partition, { nextOffset: input.nextOffset, factStream });
    await this.settle(input.partition);
  }

  /**
   * Finishes the partition's unsettled flush, if any: settles an unknown step 2 (by finalizing its
   * log stream) and commits a decided fact stream. Returns the offset it stored, or null.
   */
  async settle(partition: number): Promise<string | null> {
    const u = this.unsettled.get(partition);
    if (!u) return null;
    if (u.ambiguousAt) {
      const { log, offset } = u.ambiguousAt;
      if (this.logs.get(partition) === log) this.logs.delete(partition);
      const count = await this.call('finalize the commit log stream', () => log.connection.finalize());
      this.drop(log.connection);
      if (Number(count?.rowCount ?? 0) <= offset) {
        this.unsettled.delete(partition); // the decision never landed: F is garbage
        return null;
      }
      this.unsettled.set(partition, { nextOffset: u.nextOffset, factStream: u.factStream });
    }
    if (u.factStream && (await this.commit(u.factStream)) === 'gone')
      throw new PipelineError('SINK_STATE_LOST', `the decided stream ${u.factStream} can no longer be committed`, {
        retriable: true,
      });
    this.unsettled.delete(partition);
    return u.nextOffset;
  }

  /** Forgets what is in memory of a partition (it was revoked; the log is the truth). */
  forget(partition: number): void {
    this.unsettled.delete(partition);
    const log = this.logs.get(partition);
    this.logs.delete(partition);
    if (log) this.drop(log.connection);
  }

  /** Whether `stream` is committed (GetWriteStream shows a commit time). */
  async isCommitted(stream: string): Promise<boolean> {
    try {
      const s = await this.client.getWriteStream({ streamId: stream });
      return Boolean(s.commitTime);
    } catch (err) {
      if ((err as StorageFailure).code === 5) return false; // NOT_FOUND: expired, never committed
      throw classifyStorageError(err, `reading stream ${stream}`);
    }
  }

  /** Commits a finalized fact stream; 'committed' also when it already was, 'gone' when it no longer exists. */
  async commit(stream: string): Promise<CommitOutcome> {
    const res = await this.call('BatchCommitWriteStreams', () =>
      this.client.batchCommitWriteStream({ parent: this.tables.fact, writeStreams: [stream] }),
    );
    const errors = res.streamErrors ?? [];
    if (errors.length === 0 && res.commitTime) return 'committed';
    const codes = errors.map((e) => storageErrorName(e.code));
    if (codes.every((c) => c === 'STREAM_ALREADY_COMMITTED')) return 'committed';
    if (codes.every((c) => c === 'STREAM_NOT_FOUND')) return 'gone';
    throw new PipelineError(
      'SINK_WRITE_FAILED',
      `BigQuery Storage Write API BatchCommitWriteStreams refused ${stream}: ${errors.map((e) => e.errorMessage).join('; ')}`,
      { retriable: true, details: { streamErrors: codes } },
    );
  }

  close(): void {
    for (const p of [...this.logs.keys()]) this.forget(p);
    this.client.close();
  }

  /** Step 1: the rows in a new PENDING stream of the fact table, finalized. Returns its name. */
  private async appendFact(rows: FactRows): Promise<string> {
    const opening = this.call('open a fact stream', () =>
      this.client.createStreamConnection({
        streamType: managedwriter.PendingStream,
        destinationTable: this.tables.fact,
      }),
    );
    opening.catch(() => undefined); // awaited below; the rows are encoded while the stream is created
    await new Promise<void>((resolve) => setImmediate(resolve));
    const encoded = rows.encode();
    const connection = await opening;
    try {
      connection.onConnectionError(() => undefined); // failures reach the pending writes' results
      const writer = new managedwriter.Writer({ connection, protoDescriptor: protoDescriptor(FACT_TABLE) });
      let offset = 0;
      const sent = appendChunks(encoded).map((chunk) => {
        const pw = writer.appendRows({ serializedRows: chunk }, offset);
        offset += chunk.length;
        return pw;
      });
      // Every request gets an answer, in order; the first failure is the one reported.
      const results = await Promise.allSettled(sent.map((pw) => this.result(pw, 'append')));
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
      const finalized = await this.call('FinalizeWriteStream', () => connection.finalize());
      if (Number(finalized?.rowCount ?? -1) !== rows.count)
        throw new PipelineError('SINK_WRITE_FAILED', `finalized ${String(finalized?.rowCount)} rows of ${rows.count}`, {
          retriable: true,
        });
      return connection.getStreamId();
    } finally {
      this.drop(connection);
    }
  }

  /** The partition's COMMITTED log stream, created on its first decision. */
  private async logStream(partition: number): Promise<LogStream> {
    const known = this.logs.get(partition);
    if (known) return known;
    const connection = await this.call('open a commit-log stream', () =>
      this.client.createStreamConnection({
        streamType: managedwriter.CommittedStream,
        destinationTable: this.tables.log,
      }),
    );
    connection.onConnectionError(() => undefined);
    const writer = new managedwriter.Writer({ connection, protoDescriptor: protoDescriptor(COMMIT_LOG) });
    const log = { connection, writer, next: 0 };
    this.logs.set(partition, log);
    return log;
  }

  /** An append's answer: its error (with the refused rows) as a classified PipelineError. */
  private async result(pw: ReturnType<managedwriter.Writer['appendRows']>, what: string): Promise<void> {
    const res = await this.call(what, () => pw.getResult());
    if (res.error) throw classifyStorageError({ ...res.error, rowErrors: res.rowErrors }, what);
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw classifyStorageError(err, what);
    }
  }

  /**
   * Closes a connection and drops the client's reference to it: the managed writer keeps every
   * connection it opened until the client closes, which a stream per flush would grow without bound.
   */
  private drop(connection: Connection): void {
    connection.close();
    const list = (this.client as unknown as { _connections?: { connectionList?: Connection[] } })._connections
      ?.connectionList;
    const i = list?.indexOf(connection) ?? -1;
    if (list && i >= 0) list.splice(i, 1);
  }
}

const StorageErrorCode = protos.google.cloud.bigquery.storage.v1.StorageError.StorageErrorCode;

/** A StorageError code by name, whether the client decoded it as the enum's name or its number. */
function storageErrorName(code: unknown): string {
  return typeof code === 'number' ? (StorageErrorCode[code] ?? String(code)) : String(code);
}
