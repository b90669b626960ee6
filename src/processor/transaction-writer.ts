import { performance } from 'node:perf_hooks';
import { PipelineError, errorMessage } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { CommitPacer } from '../runtime/commit-pacer.js';
import { retry } from '../runtime/retry.js';
import type { ProcessorMetrics } from './metrics.js';
import { isHung } from '../kafka/txn-call.js';
import type { GroupConsumer, PartitionOffset, TxnError, TxnProducer } from '../kafka/txn-producer.js';

/**
 * Group commit of processed batches into Kafka transactions (exactly-once, KIP-447).
 *
 * A batch is submitted with its output records and the consumer offsets it completes. One
 * transaction is in flight at a time; batches submitted meanwhile wait and go together into the
 * next one, so several partitions' batches share a commit (throughput) while each batch's
 * records and offsets always commit or abort together. `submit` resolves once that transaction
 * has committed and rejects if it aborted (the caller then leaves its offsets unresolved and the
 * consumer re-reads the batch). The offsets are sent with the consumer's group metadata, so a
 * member fenced by a rebalance cannot commit them (its transaction aborts instead).
 *
 * The next transaction is begun as soon as the previous one ended, not when a group is ready: a
 * begin is local to the client, but its completion reaches the main thread only between two slices
 * of transform work, and a group would wait for it (measured ~10–30 ms per transaction under load,
 * docs/processor.md). A begun transaction holds nothing until something is produced into it (no
 * broker state, no timeout running); `close` aborts it.
 */

export interface OutRecord {
  topic: string;
  key: string | null;
  /** JSON text, or its UTF-8 bytes (e.g. a ValueArena view: off the heap while it waits). */
  value: string | Buffer;
}

export interface TopicPartitionOffset {
  topic: string;
  partition: number;
  /** Next offset to consume (last processed + 1). */
  offset: number;
}

export interface Submission {
  records: OutRecord[];
  offsets: TopicPartitionOffset[];
}

interface Pending extends Submission {
  seq: number;
  resolve(): void;
  reject(err: unknown): void;
}

/** Largest number of records one transaction takes from the queue (a single larger batch still goes alone). */
const MAX_RECORDS_PER_TRANSACTION = 50000;
const COMMIT_RETRY = { attempts: 4, baseMs: 100, maxMs: 2000, jitter: 'full' } as const;
/**
 * An abort that times out (the broker restarting or down: librdkafka's "retry call to resume") is
 * repeated rather than taken as the producer's end, so the processor recovers in place once the
 * broker is back. Each call waits up to 30 s: about ten minutes in all before it gives up.
 */
const ABORT_RETRY = { attempts: 20, baseMs: 500, maxMs: 5000, jitter: 'full' } as const;
/** Fencing a hung producer before the processor stops: tried for some minutes (the broker may be down). */
const FENCE_RETRY = { attempts: 40, baseMs: 500, maxMs: 5000, jitter: 'full' } as const;
/** Getting a replacement producer: the broker is back (its abort answered), so a few tries. */
const RENEW_RETRY = { attempts: 5, baseMs: 1000, maxMs: 10000, jitter: 'full' } as const;
const retriableOnly = (err: unknown): boolean => {
  const f = err as KafkaErrorFlags;
  return Boolean(f.retriable) && !f.abortable && !f.fatal;
};

type KafkaErrorFlags = Partial<Pick<TxnError, 'retriable' | 'abortable' | 'fatal'>>;

export class TransactionWriter {
  private queue: Pending[] = [];
  private active = false;
  private seq = 0;
  private settledSeq = 0;
  private readonly pacer: CommitPacer;
  /** Ends the pacer's wait early (the queue reached `pacing.fullAt`). */
  private wakeGap: (() => void) | undefined;
  private drainWaiters: Array<{ seq: number; resolve(): void }> = [];
  private fatalError: PipelineError | undefined;
  /** The next transaction's begin, started when the previous one ended (undefined: not begun). */
  private begun: Promise<void> | undefined;

  constructor(
    private producer: TxnProducer,
    private readonly consumer: GroupConsumer,
    private readonly log: Logger,
    private readonly metrics: ProcessorMetrics,
    /** Called once when the producer is unusable (fenced or fatal): the processor must stop. */
    private readonly onFatal: (err: PipelineError) => void,
    /**
     * Commit pacing (runtime/commit-pacer.ts) while the queue holds fewer than `fullAt` records:
     * after a transaction that took d ms the next starts d × `ratio` ms after it ended (at most
     * `maxGapMs`), so small batches arriving meanwhile share a transaction (each costs the broker
     * about ten requests whatever its size) only as much as commits cost; a queue of a full batch
     * or more commits at once.
     */
    private readonly pacing: { ratio: number; maxGapMs: number; fullAt: number } = {
      ratio: 0,
      maxGapMs: 0,
      fullAt: 1,
    },
    /**
     * A new producer with the same transactional id (its `initTransactions` fences the unusable
     * one and ends its transaction). Given, a producer left unusable by a broker fault — the broker
     * aborted its timed-out transaction and bumped its epoch while it was away, so its own abort
     * fails with an invalid state — is replaced in place instead of stopping the processor.
     */
    private readonly renew?: () => Promise<TxnProducer>,
  ) {
    this.pacer = new CommitPacer(pacing);
  }

  /** The producer in use (a replaced one has been disconnected already). */
  get currentProducer(): TxnProducer {
    return this.producer;
  }

  get fatal(): PipelineError | undefined {
    return this.fatalError;
  }

  submit(sub: Submission): Promise<void> {
    if (this.fatalError) return Promise.reject(this.fatalError);
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ ...sub, seq: ++this.seq, resolve, reject });
      if (this.queuedRecords() >= this.pacing.fullAt) this.wakeGap?.();
      void this.pump();
    });
  }

  /** Resolves once everything submitted before the call has committed or aborted. */
  drain(): Promise<void> {
    const seq = this.seq;
    if (this.settledSeq >= seq) return Promise.resolve();
    return new Promise<void>((resolve) => this.drainWaiters.push({ seq, resolve }));
  }

  /** Drains, then aborts a transaction begun ahead that nothing was produced into. Call once, at stop. */
  async close(): Promise<void> {
    await this.drain();
    const begun = this.begun;
    this.begun = undefined;
    if (begun === undefined || this.fatalError) return;
    try {
      await begun;
      await this.producer.abort();
    } catch (err) {
      this.log.debug({ err: errorMessage(err) }, 'aborting the empty transaction begun ahead failed');
    }
  }

  /** Begins the next transaction ahead of need; a failed begin is retried by the next group. */
  private beginAhead(): void {
    if (this.fatalError || this.begun !== undefined) return;
    const begun = this.producer.begin();
    begun.catch(() => {
      if (this.begun === begun) this.begun = undefined;
    });
    this.begun = begun;
  }

  private async pump(): Promise<void> {
    if (this.active) return;
    this.active = true;
    try {
      while (this.queue.length > 0) {
        await this.waitForGap();
        let n = 0;
        let records = 0;
        while (
          n < this.queue.length &&
          (n === 0 || records + (this.queue[n]?.records.length ?? 0) <= MAX_RECORDS_PER_TRANSACTION)
        ) {
          records += this.queue[n]?.records.length ?? 0;
          n++;
        }
        const group = this.queue.splice(0, n);
        const startedAt = this.pacer.started();
        await this.commitGroup(group);
        this.pacer.ended(startedAt);
        this.settle(group[group.length - 1]?.seq ?? this.settledSeq);
      }
    } finally {
      this.active = false;
    }
  }

  /** Records waiting for a transaction (the queue holds a few batches at most). */
  private queuedRecords(): number {
    let n = 0;
    for (const p of this.queue) n += p.records.length;
    return n;
  }

  private waitForGap(): Promise<void> {
    const wait = this.pacer.waitMs();
    if (wait <= 0 || this.queuedRecords() >= this.pacing.fullAt) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakeGap = undefined;
        resolve();
      };
      const timer = setTimeout(done, wait);
      this.wakeGap = done;
    });
  }

  private async commitGroup(group: Pending[]): Promise<void> {
    if (this.fatalError) {
      for (const p of group) p.reject(this.fatalError);
      return;
    }
    const started = performance.now();
    const offsets = new Map<string, PartitionOffset>();
    for (const p of group) {
      for (const o of p.offsets) {
        const key = `${o.topic}\u0000${o.partition}`;
        const prev = offsets.get(key);
        if (!prev || o.offset > prev.offset)
          offsets.set(key, { topic: o.topic, partition: o.partition, offset: o.offset });
      }
    }
    let begun = false;
    try {
      const ahead = this.begun;
      this.begun = undefined;
      await (ahead ?? this.producer.begin());
      begun = true;
      for (const p of group) for (const r of p.records) this.producer.produce(r.topic, r.key, r.value);
      if (offsets.size > 0) await this.producer.sendOffsets([...offsets.values()], this.consumer);
      await retry(() => this.producer.commit(), { ...COMMIT_RETRY, shouldRetry: retriableOnly });
      this.metrics.transactions.inc({ result: 'committed' });
      this.metrics.transactionSeconds.observe((performance.now() - started) / 1000);
      this.beginAhead();
      for (const p of group) p.resolve();
    } catch (err) {
      const flags = err as KafkaErrorFlags;
      this.metrics.transactions.inc({ result: 'aborted' });
      let unusable: unknown = flags.fatal ? err : undefined;
      if (begun && !flags.fatal) {
        try {
          await retry(() => this.producer.abort(), {
            ...ABORT_RETRY,
            shouldRetry: retriableOnly,
            onRetry: (abortErr, attempt) =>
              this.log.warn(
                { err: errorMessage(abortErr), attempt },
                'aborting the failed transaction timed out; retrying (the broker may be restarting)',
              ),
          });
        } catch (abortErr) {
          unusable = abortErr;
        }
      }
      // A hung producer is not replaced in place: librdkafka keeps the call, and one of libuv's
      // threads with it, for good (kafka/txn-call.ts); the process exits to be restarted.
      if (unusable !== undefined && isHung(unusable)) {
        await this.fenceHung();
        this.markFatal(unusable);
      } else if (unusable === undefined || (await this.replaceProducer(unusable))) this.beginAhead();
      else this.markFatal(unusable);
      this.log.warn(
        { err: errorMessage(err), batches: group.length },
        'processor transaction aborted; its batches will be re-read',
      );
      const reason = new PipelineError('FENCED', `transaction aborted: ${errorMessage(err)}`, {
        retriable: !this.fatalError,
        cause: err,
      });
      for (const p of group) p.reject(this.fatalError ?? reason);
    }
  }

  /**
   * Before the processor stops for a hung producer: a producer with the same transactional id
   * (`renew`) is initialised and closed, which makes the broker abort the hung one's open
   * transaction at once — without it, read_committed readers of the partitions it wrote to wait
   * for the transaction timeout (the restarted processor has an id of its own). Tried until Kafka
   * answers (FENCE_RETRY), so a processor whose call hung while the broker is down waits for it
   * here rather than exiting into a crash loop of restarts that cannot reach it. Best effort.
   */
  private async fenceHung(): Promise<void> {
    const renew = this.renew;
    if (renew === undefined) return;
    try {
      const fresh = await retry(() => renew(), {
        ...FENCE_RETRY,
        shouldRetry: () => true,
        onRetry: (err, attempt) =>
          this.log.warn(
            { err: errorMessage(err), attempt },
            'fencing the hung transactional producer: Kafka not reachable yet; retrying',
          ),
      });
      await fresh.disconnect();
      this.log.warn('hung transactional producer fenced: its open transaction aborted');
    } catch (err) {
      this.log.warn(
        { err: errorMessage(err) },
        'could not fence the hung transactional producer; the broker aborts its transaction at its timeout',
      );
    }
  }

  /** Swaps in a new producer (`renew`); false when there is none or it cannot be had. */
  private async replaceProducer(cause: unknown): Promise<boolean> {
    if (this.renew === undefined) return false;
    try {
      const fresh = await retry(() => this.renew?.() ?? Promise.reject(new Error('no renew')), RENEW_RETRY);
      const old = this.producer;
      this.producer = fresh;
      this.begun = undefined;
      void old.disconnect().catch(() => undefined);
      this.log.warn(
        { err: errorMessage(cause) },
        'transactional producer unusable after a broker fault: replaced in place (its transaction ended aborted; its batches are re-read)',
      );
      return true;
    } catch (err) {
      this.log.error(
        { err: errorMessage(err), cause: errorMessage(cause) },
        'could not replace the unusable transactional producer',
      );
      return false;
    }
  }

  private settle(seq: number): void {
    if (seq > this.settledSeq) this.settledSeq = seq;
    this.drainWaiters = this.drainWaiters.filter((w) => (w.seq <= this.settledSeq ? (w.resolve(), false) : true));
  }

  /** Ends the processor: `onFatal` gets a TIMEOUT (retriable: a restart helps) for a hung producer, FENCED otherwise. */
  private markFatal(err: unknown): void {
    if (this.fatalError) return;
    const hung = isHung(err);
    this.fatalError = hung
      ? new PipelineError('TIMEOUT', `transactional producer hung: ${errorMessage(err)}`, {
          retriable: true,
          cause: err,
        })
      : new PipelineError('FENCED', `transactional producer unusable: ${errorMessage(err)}`, {
          retriable: false,
          cause: err,
        });
    this.log.error(
      { err: errorMessage(err) },
      hung
        ? 'processor producer hung in librdkafka; the processor stops to be restarted'
        : 'processor producer failed fatally (fenced by a newer instance?)',
    );
    for (const p of this.queue.splice(0)) p.reject(this.fatalError);
    this.settle(this.seq);
    this.onFatal(this.fatalError);
  }
}
