import { PipelineError, errorMessage } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { TxnError, TxnProducer } from '../kafka/txn-producer.js';
import { retry, sleep } from '../runtime/retry.js';
import type { OutMessage } from './envelope.js';

/**
 * Writes records into Kafka transactions, one transaction at a time, through librdkafka's raw
 * transactional producer (no per-message promise or delivery report: the commit fails if any
 * message was not delivered). `add` is synchronous; `commit` closes the current transaction and
 * returns at once with a promise for its commit, so the caller can go on adding records — they go
 * into the NEXT transaction — while the commit runs.
 *
 * Memory is bounded twice: librdkafka's local queue (`queueMaxMessages`; a full queue is retried
 * every few ms) and the records held here while no transaction can take them (a commit or begin in
 * progress, a full queue). Past `maxHeld` held records `full` turns true and the caller awaits
 * `room()` (through the replication stream's flow control that pauses reading WAL). A transaction
 * may therefore hold any number of records — a million-row PostgreSQL transaction streams through.
 *
 * A commit that fails with an error that is retriable but neither abortable nor fatal (it timed
 * out: a broker lost, its partitions' leaders and the transaction coordinator moving) is called
 * again, which librdkafka resumes where it stopped, up to COMMIT_RESUME's attempts: the transaction
 * commits once the cluster has recovered, instead of the session ending and reopening.
 * After any other failure the writer is poisoned: every later call throws the first error and the
 * caller must abandon the producer (a new one's initTransactions aborts what was left open).
 *
 * With an `encoder` (KAFKA_VALUE_FORMAT=avro: src/cdc/avro/avro-encoder.ts) every record `add`
 * takes is encoded by it first (key and value as Buffers); the records `commit` closes a
 * transaction with (the position) are written as they are.
 */

/** Turns an added record's JSON key and value into the bytes written (a null value stays null). */
export interface RecordEncoder {
  encode(topic: string, key: string | null, value: string | null): { key: Buffer | null; value: Buffer | null };
}

interface Held {
  topic: string;
  key: string | Buffer | null;
  value: Buffer | null;
}

/** Records bound for one transaction; `closing` set once `commit` has been called for it. */
interface Segment {
  records: Held[];
  next: number;
  closing?: { last: Held[]; resolve(): void; reject(err: unknown): void };
}

/**
 * A timed-out commit is called once more: each call waits up to TXN_OP_TIMEOUT_MS (30 s), so about a
 * minute in all — a leader election, even a slow one, fits — before the session ends as on any other
 * failure. Not more: in the fault matrix on 2026-12-07 21:30 UTC four calls (two minutes) did not
 * get 6 records flushed after a broker restart, and the new session (new clients) that followed
 * streamed at once.
 */
const COMMIT_RESUME = { attempts: 2, baseMs: 100, maxMs: 1000, jitter: 'full' } as const;
const resumable = (err: unknown): boolean => {
  const f = err as Partial<Pick<TxnError, 'retriable' | 'abortable' | 'fatal'>>;
  return Boolean(f.retriable) && !f.abortable && !f.fatal;
};

/** Wait before retrying a produce that found librdkafka's queue full. */
const QUEUE_FULL_WAIT_MS = 2;
/** librdkafka copies each payload at produce (RK_MSG_COPY), so a value produced at once is encoded
 *  into this reused buffer instead of a new Buffer per record (~2 µs per 600-byte record saved). */
const SCRATCH_BYTES = 1 << 20;

export class TxnWriter {
  private readonly segments: Segment[] = [];
  private open = false;
  private working = false;
  private held = 0;
  private added = 0;
  private failure: unknown;
  private roomWaiters: Array<{ resolve(): void; reject(err: unknown): void }> = [];
  private idle: Promise<void> = Promise.resolve();
  private readonly scratch = Buffer.allocUnsafe(SCRATCH_BYTES);

  constructor(
    private readonly producer: TxnProducer,
    private readonly maxHeld = 20_000,
    private readonly encoder?: RecordEncoder,
    /** Where a resumed commit is reported. */
    private readonly log?: Logger,
  ) {}

  /** Records added since the last `commit` (the transaction being filled). */
  get size(): number {
    return this.added;
  }

  /** True when the caller should await `room()` before adding more. */
  get full(): boolean {
    return this.held >= this.maxHeld;
  }

  /** Adds one record to the current transaction (a null value is a tombstone). */
  add(topic: string, key: string | null, value: string | null): void {
    this.check();
    if (this.encoder) return this.addEncoded(topic, this.encoder.encode(topic, key, value));
    this.added++;
    // Nothing waiting and a transaction open: straight into librdkafka.
    if (!this.working && this.open) {
      if (value === null) {
        if (this.producer.tryProduce(topic, key, null)) return;
      } else if (value.length * 3 <= SCRATCH_BYTES) {
        const n = this.scratch.write(value, 0, 'utf8');
        if (this.producer.tryProduce(topic, key, this.scratch.subarray(0, n))) return;
      }
    }
    this.tail().records.push({ topic, key, value: value === null ? null : Buffer.from(value) });
    this.held++;
    this.kick();
  }

  private addEncoded(topic: string, r: { key: Buffer | null; value: Buffer | null }): void {
    this.added++;
    if (!this.working && this.open && this.producer.tryProduce(topic, r.key, r.value)) return;
    this.tail().records.push({ topic, key: r.key, value: r.value });
    this.held++;
    this.kick();
  }

  /** Resolves once fewer than `maxHeld` records are held; rejects if the writer failed. */
  room(): Promise<void> {
    this.check();
    if (this.held < this.maxHeld) return Promise.resolve();
    return new Promise<void>((resolve, reject) => this.roomWaiters.push({ resolve, reject }));
  }

  /**
   * Closes the current transaction with `last` (the position record) as its final records and
   * commits it once everything before it is delivered. Resolves when the commit succeeded.
   */
  commit(last: readonly OutMessage[]): Promise<void> {
    this.check();
    const seg = this.tail();
    this.added = 0;
    const done = new Promise<void>((resolve, reject) => {
      seg.closing = {
        last: last.map((m) => ({ topic: m.topic, key: m.key, value: m.value === null ? null : Buffer.from(m.value) })),
        resolve,
        reject,
      };
    });
    this.kick();
    return done;
  }

  /** Drops everything not committed yet and aborts the open transaction (best effort; the next
   *  producer's initTransactions aborts it anyway). The writer stays poisoned if it failed. */
  async abort(): Promise<void> {
    const dropped = new PipelineError('INTERNAL', 'transaction aborted', { retriable: true });
    for (const seg of this.segments.splice(0)) seg.closing?.reject(dropped);
    this.held = 0;
    this.added = 0;
    await this.idle;
    if (this.open) {
      this.open = false;
      await this.producer.abort().catch(() => undefined);
    }
    this.wake();
  }

  private tail(): Segment {
    let seg = this.segments[this.segments.length - 1];
    if (!seg || seg.closing) this.segments.push((seg = { records: [], next: 0 }));
    return seg;
  }

  private kick(): void {
    if (this.working) return;
    this.working = true;
    this.idle = this.work();
  }

  /** Drains the segments in order: begin when needed, produce, commit closed segments. Runs while
   *  `working`; returns (clearing it in the same step) as soon as nothing is left. */
  private async work(): Promise<void> {
    try {
      for (let seg = this.segments[0]; seg; seg = this.segments[0]) {
        if (!this.open) {
          await this.producer.begin();
          this.open = true;
        }
        while (seg.next < seg.records.length) {
          const r = seg.records[seg.next] as Held;
          if (!this.producer.tryProduce(r.topic, r.key, r.value)) {
            await sleep(QUEUE_FULL_WAIT_MS);
            if (this.segments[0] !== seg) return; // aborted meanwhile
            continue;
          }
          seg.next++;
          this.held--;
          if (seg.next >= 4096 && seg.next * 2 >= seg.records.length) {
            seg.records.splice(0, seg.next);
            seg.next = 0;
          }
          if (this.held < this.maxHeld) this.wake();
        }
        const closing = seg.closing;
        if (!closing) {
          this.segments.shift(); // the tail, fully produced: `add` may produce directly again
          return;
        }
        for (const r of closing.last)
          while (!this.producer.tryProduce(r.topic, r.key, r.value)) await sleep(QUEUE_FULL_WAIT_MS);
        await this.commitResuming();
        this.open = false;
        if (this.segments[0] === seg) this.segments.shift();
        closing.resolve();
        this.wake();
      }
    } catch (err) {
      this.failure ??= err;
      for (const seg of this.segments.splice(0)) seg.closing?.reject(this.failure);
      this.wake();
    } finally {
      // Synchronously with the last step: an `add` or `commit` right after must restart the worker.
      this.working = false;
    }
  }

  private async commitResuming(): Promise<void> {
    const started = Date.now();
    let retried = 0;
    await retry(() => this.producer.commit(), {
      ...COMMIT_RESUME,
      shouldRetry: resumable,
      onRetry: (err, attempt) => {
        retried = attempt;
        this.log?.warn(
          { err: errorMessage(err), attempt, waited_ms: Date.now() - started },
          'Kafka commit not done in time (a broker lost?); resuming it',
        );
      },
    });
    if (retried > 0) this.log?.info({ waited_ms: Date.now() - started }, 'Kafka commit resumed and done');
  }

  private wake(): void {
    const waiters = this.roomWaiters;
    if (waiters.length === 0 || (this.failure === undefined && this.held >= this.maxHeld)) return;
    this.roomWaiters = [];
    for (const w of waiters) {
      if (this.failure === undefined) w.resolve();
      else w.reject(this.failure);
    }
  }

  private check(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}
