import { randomUUID } from 'node:crypto';
import { PipelineError, errorMessage } from '../../core/errors.js';
import type { Sink, SinkBatch, SinkContext, SinkRecord } from '../../core/sink-contract.js';
import { applyScript, decodeApplyReply } from './apply-script.js';
import { buildPayload, checkRecord } from './batch-payload.js';
import { MINUTE_MS, RedisKeys } from './keys.js';
import { connectRedis, isTransientRedisError, type RedisClient } from './lua-script.js';
import { redisSinkMetrics } from './metrics.js';
import { redisSinkOptions, type RedisSinkOptions } from './options.js';

/**
 * The Redis sink: per-minute event-time buckets of a sliding window, written by one Lua script
 * per partition batch together with the partition's next offset (exactly-once in effect).
 *
 * State-loss detection: the sink remembers the state epoch (a random id created with the first
 * write into an empty Redis) and the next offset it last saw stored for each partition. A write
 * that finds the epoch gone or changed, or a partition's stored offset missing or lower than
 * remembered (a wipe, FLUSHALL, a restart without persistence, or a restore of an older
 * snapshot), changes nothing and throws SINK_STATE_LOST; until the runtime calls
 * `storedOffsets` again every write throws the same. `storedOffsets` then reports what Redis really
 * holds (nothing after a wipe) and `startPosition` points at now - window - 1 minute, so the
 * runtime re-reads the window from Kafka; the event-id ledger keeps that rebuild from counting
 * anything twice.
 */
export class RedisSink implements Sink {
  readonly name = 'redis';
  private readonly options: RedisSinkOptions;
  private readonly keys: RedisKeys;
  private client: RedisClient | undefined;
  private epoch: string | null = null;
  private readonly expectedNext = new Map<string, string>();
  /** Content metadata written under the current epoch, so unchanged metadata is not rewritten. */
  private readonly metaKnown = new Map<string, string>();
  private lostReason: string | null = null;

  constructor(
    private readonly ctx: SinkContext,
    overrides: Partial<RedisSinkOptions> = {},
  ) {
    this.options = redisSinkOptions(ctx.config, overrides);
    this.keys = new RedisKeys(this.options.prefix);
  }

  async start(): Promise<void> {
    try {
      this.client = await connectRedis(this.options.url, 'engage-sink-redis');
      await applyScript.load(this.client);
    } catch (err) {
      await this.close();
      throw new PipelineError('SERVICE_UNREACHABLE', `Redis at ${redact(this.options.url)}: ${errorMessage(err)}`, {
        retriable: true,
        cause: err,
      });
    }
    await this.warnOnEviction();
  }

  check(record: SinkRecord): PipelineError | null {
    return checkRecord(record);
  }

  async storedOffsets(topic: string, partitions: number[]): Promise<Map<number, string>> {
    const client = this.connected();
    const fields = partitions.map((p) => RedisKeys.offsetField(topic, p));
    let values: Array<string | null>;
    try {
      values = (await client.hmGet(this.keys.state(), ['epoch', ...fields])) as Array<string | null>;
    } catch (err) {
      throw new PipelineError('SINK_WRITE_FAILED', `Redis sink: reading stored offsets: ${errorMessage(err)}`, {
        retriable: isTransientRedisError(err),
        cause: err,
      });
    }
    const [epoch, ...offsets] = values;
    this.lostReason = null;
    const out = new Map<number, string>();
    if (epoch === null || epoch === undefined) {
      this.adoptEpoch(null);
      return out;
    }
    this.adoptEpoch(epoch);
    partitions.forEach((p, i) => {
      const field = fields[i] as string;
      const v = offsets[i];
      if (typeof v === 'string') {
        out.set(p, v);
        this.expectedNext.set(field, v);
      } else {
        this.expectedNext.delete(field);
      }
    });
    return out;
  }

  /** A partition with no stored offset starts one minute before the window (covers clock skew). */
  startPosition(): { timestampMs: number } {
    return { timestampMs: this.options.now() - (this.options.windowMinutes + 1) * MINUTE_MS };
  }

  async write(batch: SinkBatch): Promise<void> {
    const client = this.connected();
    const metrics = redisSinkMetrics();
    if (this.lostReason !== null) throw this.lostError(batch, this.lostReason);
    const field = RedisKeys.offsetField(batch.topic, batch.partition);
    const expectedNext = this.expectedNext.get(field) ?? null;
    // The stored offset is at least what this sink last saw (the script enforces it), so records
    // below it are skipped here; a rejected attempt can only shrink the candidate set further.
    let minOffset = expectedNext === null ? 0 : Number(expectedNext);
    const exclude = new Set<string>();
    for (;;) {
      const built = buildPayload(batch, {
        windowMinutes: this.options.windowMinutes,
        marginSeconds: this.options.marginSeconds,
        recentEvents: this.options.recentEvents,
        dedupe: this.options.dedupe,
        nowMs: this.options.now(),
        root: this.keys.root,
        expectedEpoch: this.epoch,
        newEpoch: randomUUID(),
        expectedNext,
        metaKnown: this.metaKnown,
        minOffset,
        exclude,
      });
      let reply: unknown;
      try {
        reply = await applyScript.run(client, [this.keys.state()], built.args);
      } catch (err) {
        throw new PipelineError(
          'SINK_WRITE_FAILED',
          `Redis sink: applying batch of ${batch.topic}[${batch.partition}]: ${errorMessage(err)}`,
          {
            retriable: isTransientRedisError(err),
            cause: err,
            details: { partition: batch.partition, nextOffset: batch.nextOffset },
          },
        );
      }
      const result = decodeApplyReply(reply);
      if (result.status === 'retry') {
        const before = minOffset + exclude.size;
        if (result.storedNext !== null) minOffset = Math.max(minOffset, Number(result.storedNext));
        for (const id of result.present) exclude.add(id);
        if (minOffset + exclude.size === before)
          throw new PipelineError(
            'INTERNAL',
            `Redis sink: apply script rejected ${batch.topic}[${batch.partition}] without a reason`,
          );
        continue;
      }
      if (result.status === 'lost') {
        this.lostReason = result.reason;
        this.metaKnown.clear();
        metrics.stateLost.inc();
        this.ctx.log.warn(
          { topic: batch.topic, partition: batch.partition, reason: result.reason },
          'Redis sink state lost: rebuilding the window from Kafka',
        );
        throw this.lostError(batch, result.reason);
      }
      this.adoptEpoch(result.epoch);
      this.expectedNext.set(field, result.storedNext);
      if (built.tooOld > 0) metrics.events.inc({ result: 'too_old' }, built.tooOld);
      if (built.invalid > 0) metrics.events.inc({ result: 'invalid' }, built.invalid);
      if (result.status === 'replayed') {
        if (built.inWindow > 0) metrics.events.inc({ result: 'replayed' }, built.inWindow);
        return;
      }
      for (const [id, sig] of built.metaWritten) this.metaKnown.set(id, sig);
      if (result.applied > 0) metrics.events.inc({ result: 'applied' }, result.applied);
      if (built.duplicates > 0) metrics.events.inc({ result: 'duplicate' }, built.duplicates);
      if (built.below > 0) metrics.events.inc({ result: 'below_offset' }, built.below);
      if (built.implausible > 0) metrics.events.inc({ result: 'implausible' }, built.implausible);
      return;
    }
  }

  async health(): Promise<{ ok: boolean; detail?: Record<string, unknown> }> {
    const detail = { epoch: this.epoch, stateLost: this.lostReason };
    if (!this.client?.isReady) return { ok: false, detail: { ...detail, error: 'not connected' } };
    try {
      await this.client.ping();
      return { ok: this.lostReason === null, detail };
    } catch (err) {
      return { ok: false, detail: { ...detail, error: errorMessage(err) } };
    }
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client?.isOpen) await client.close().catch(() => client.destroy());
  }

  /** What the sink remembers is only valid for one epoch: a new (or no) epoch forgets it. */
  private adoptEpoch(epoch: string | null): void {
    if (epoch !== this.epoch) {
      this.expectedNext.clear();
      this.metaKnown.clear();
    }
    this.epoch = epoch;
  }

  private connected(): RedisClient {
    if (!this.client) throw new PipelineError('INTERNAL', 'Redis sink used before start() or after close()');
    return this.client;
  }

  private lostError(batch: SinkBatch, reason: string): PipelineError {
    return new PipelineError(
      'SINK_STATE_LOST',
      `Redis sink state ${reason} (wiped, flushed or restored): re-seek from storedOffsets/startPosition`,
      {
        retriable: false,
        details: { topic: batch.topic, partition: batch.partition, reason },
      },
    );
  }

  /** Aggregates must never be evicted silently: anything but noeviction with a memory limit is a risk. */
  private async warnOnEviction(): Promise<void> {
    try {
      const cfg = (await this.connected().configGet('maxmemory*')) as Record<string, string>;
      const policy = cfg['maxmemory-policy'];
      if (Number(cfg.maxmemory ?? '0') > 0 && policy !== 'noeviction') {
        this.ctx.log.warn(
          { policy },
          'Redis evicts keys under memory pressure: the Redis sink cannot detect evicted buckets; use maxmemory-policy noeviction',
        );
      }
    } catch {
      // CONFIG may be disabled on managed Redis: nothing to check then.
    }
  }
}

function redact(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
