import { PipelineError } from '../core/errors.js';
import type { Producer } from '../kafka/client.js';
import type { OutMessage } from './envelope.js';

/**
 * Writes records into one Kafka transaction at a time with bounded memory: records are handed to
 * the producer in chunks of `chunkSize`, at most `maxInFlight` chunks awaiting their delivery
 * reports; `add` waits when that limit is reached (which, through the replication stream's flow
 * control, pauses reading WAL). A transaction may therefore hold any number of records — a
 * million-row PostgreSQL transaction streams through without being held in memory.
 *
 * After any failure the writer is poisoned: every later call rethrows the first error; the caller
 * must abandon the producer (a new one's initTransactions aborts what was left open).
 */
export class TxnWriter {
  private chunk: OutMessage[] = [];
  private inFlight: Array<Promise<unknown>> = [];
  private failure: unknown;
  private openTxn = false;
  private records = 0;

  constructor(
    private readonly producer: Producer,
    private readonly chunkSize = 1000,
    private readonly maxInFlight = 32,
  ) {}

  get isOpen(): boolean {
    return this.openTxn;
  }

  /** Records added to the open transaction so far. */
  get size(): number {
    return this.records;
  }

  async begin(): Promise<void> {
    this.check();
    if (this.openTxn) return;
    await this.guard(this.producer.transaction());
    this.openTxn = true;
    this.records = 0;
  }

  async add(records: readonly OutMessage[]): Promise<void> {
    this.check();
    if (!this.openTxn) throw new PipelineError('INTERNAL', 'TxnWriter.add outside a transaction');
    for (const r of records) this.chunk.push(r);
    this.records += records.length;
    if (this.chunk.length >= this.chunkSize) await this.flushChunk();
  }

  /** Adds `last` (the position record), waits for every delivery, then commits. */
  async commit(last: readonly OutMessage[]): Promise<void> {
    await this.add(last);
    await this.flushChunk();
    await this.guard(Promise.all(this.inFlight));
    this.inFlight = [];
    this.check();
    await this.guard(this.producer.commit());
    this.openTxn = false;
    this.records = 0;
  }

  /** Best-effort abort (the next producer's initTransactions aborts it anyway). */
  async abort(): Promise<void> {
    this.chunk = [];
    await Promise.allSettled(this.inFlight);
    this.inFlight = [];
    if (this.openTxn) {
      this.openTxn = false;
      await this.producer.abort().catch(() => undefined);
    }
  }

  private async flushChunk(): Promise<void> {
    if (this.chunk.length > 0) {
      const byTopic = new Map<string, Array<{ key: string | null; value: string | null }>>();
      for (const r of this.chunk) {
        let list = byTopic.get(r.topic);
        if (!list) byTopic.set(r.topic, (list = []));
        list.push({ key: r.key, value: r.value });
      }
      this.chunk = [];
      const sent = this.producer.sendBatch({ topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })) });
      this.inFlight.push(sent.catch((err: unknown) => {
        this.failure ??= err;
      }));
    }
    while (this.inFlight.length >= this.maxInFlight) {
      await this.inFlight.shift();
      this.check();
    }
  }

  private async guard<T>(p: Promise<T>): Promise<T> {
    try {
      return await p;
    } catch (err) {
      this.failure ??= err;
      throw err;
    }
  }

  private check(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}
