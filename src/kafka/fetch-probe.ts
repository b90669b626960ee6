import { performance } from 'node:perf_hooks';
import type { RdKafka } from '@confluentinc/kafka-javascript';
import { errorMessage, PipelineError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { FETCH_STALL_MS, FetchStallWatch, type FetchStall } from './fetch-stall.js';

/**
 * The fetch-stall guard (fetch-stall.ts) wired to a BatchConsumer: `FetchProbe` asks the broker
 * what the decision needs, and `watchFetch`, which the processor and the sink runner start, turns
 * a stall into a retriable error (the owner exits; its supervisor restarts it with fresh clients,
 * which exactly-once makes safe).
 *
 * - The broker is asked (the partitions' last stable offsets: ListOffsets "latest" under the
 *   consumer's read_committed, as the content table's barrier asks, with a timeout) at most every
 *   ASK_INTERVAL_MS, and only while some partition that is not busy has fetched nothing for
 *   IDLE_MS: a consumer that keeps fetching costs no request. No answer (an error, a timeout) is
 *   no finding, logged at debug; the stall clocks then keep what they had.
 * - A partition's position is librdkafka's, which it forgets on assign and seek until it consumes
 *   again; meanwhile it is where the owner or a rewind placed it (`from`), else the group's
 *   committed offset (asked then, with the same timeout), which is where librdkafka starts it.
 * - A consumer whose client has lost the topic's metadata (its queries failing with "Unknown
 *   partition") gets no answer, hence no finding: this watch cannot see that case.
 */

/** How often the broker is asked at most, per consumer. */
const ASK_INTERVAL_MS = 15_000;
/** A partition not busy that has fetched nothing for this long makes the probe ask the broker. */
const IDLE_MS = 15_000;
const QUERY_TIMEOUT_MS = 5_000;
/** How often the owner's watch asks its consumer (which asks the broker at most every ASK_INTERVAL_MS). */
const WATCH_INTERVAL_MS = 5_000;
/** librdkafka's logical offset for the end of a partition (as a ListOffsets "timestamp": latest). */
const OFFSET_END = -1;

type RawConsumer = InstanceType<typeof RdKafka.KafkaConsumer>;
type ProbedConsumer = Pick<RawConsumer, 'position' | 'committed' | 'offsetsForTimes'>;

/** One assigned partition as the consumer's fetch buffers see it (fetch-buffers.ts). */
export interface FetchView {
  partition: number;
  busy: boolean;
  /** performance.now() when a message of it was last fetched, or it was assigned. */
  fetchedAt: number;
  /** Where assign or a seek last placed it; null: at the group's committed offset. */
  from: number | null;
}

export class FetchProbe {
  private readonly watch: FetchStallWatch;
  private askedAt = Number.NEGATIVE_INFINITY;
  private asking = false;

  constructor(
    private readonly consumer: ProbedConsumer,
    private readonly topic: string,
    private readonly log: Logger,
    private readonly now: () => number = () => performance.now(),
    afterMs: number = FETCH_STALL_MS,
  ) {
    this.watch = new FetchStallWatch(afterMs, now);
  }

  /** The partitions that have just become stalled, given every assigned partition's view. */
  async check(views: readonly FetchView[]): Promise<FetchStall[]> {
    const t = this.now();
    const idle = views.filter((v) => !v.busy && t - v.fetchedAt >= IDLE_MS);
    const unknown = (v: FetchView) => ({ ...v, position: null, stableEnd: null });
    // Every partition fetched lately or is busy: none is stalled.
    if (idle.length === 0) return this.watch.check(views.map(unknown));
    if (this.asking || t - this.askedAt < ASK_INTERVAL_MS) return [];
    this.asking = true;
    this.askedAt = t;
    try {
      const [positions, ends] = await Promise.all([this.positions(idle), this.stableEnds(idle)]);
      return this.watch.check(
        views.map((v) => ({
          ...unknown(v),
          position: positions.get(v.partition) ?? null,
          stableEnd: ends.get(v.partition) ?? null,
        })),
      );
    } catch (err) {
      this.log.debug({ err: errorMessage(err), topic: this.topic }, 'fetch-stall probe: the broker did not answer');
      return [];
    } finally {
      this.asking = false;
    }
  }

  private async positions(views: readonly FetchView[]): Promise<Map<number, number>> {
    const out = new Map<number, number>();
    const fetched = this.consumer.position(views.map((v) => ({ topic: this.topic, partition: v.partition })));
    for (const p of fetched) if (validOffset(p.offset)) out.set(p.partition, p.offset);
    const unplaced: number[] = [];
    for (const v of views) {
      if (out.has(v.partition)) continue;
      if (v.from !== null && v.from >= 0) out.set(v.partition, v.from);
      else unplaced.push(v.partition);
    }
    if (unplaced.length === 0) return out;
    const committed = await new Promise<RdKafka.TopicPartitionOffset[]>((resolve, reject) =>
      this.consumer.committed(
        unplaced.map((partition) => ({ topic: this.topic, partition })),
        QUERY_TIMEOUT_MS,
        (err, offsets) => (err ? reject(err) : resolve(offsets)),
      ),
    );
    for (const p of committed) if (validOffset(p.offset)) out.set(p.partition, p.offset);
    return out;
  }

  private stableEnds(views: readonly FetchView[]): Promise<Map<number, number>> {
    const query = views.map((v) => ({ topic: this.topic, partition: v.partition, offset: OFFSET_END }));
    return new Promise((resolve, reject) =>
      this.consumer.offsetsForTimes(query, QUERY_TIMEOUT_MS, (err, offsets) =>
        err
          ? reject(err)
          : resolve(new Map(offsets.filter((o) => validOffset(o.offset)).map((o) => [o.partition, o.offset]))),
      ),
    );
  }
}

/** librdkafka answers a logical offset (negative) or nothing where it knows no position. */
function validOffset(offset: number | undefined): offset is number {
  return typeof offset === 'number' && offset >= 0;
}

/** Whether librdkafka has a partition assigned and its position there, for a report (BatchConsumer.describe). */
export function librdkafkaView(
  consumer: Pick<RawConsumer, 'assignments' | 'position'>,
  topic: string,
  partition: number,
): { librdkafkaAssigned: boolean | string; position: number | null } {
  try {
    return {
      librdkafkaAssigned: consumer.assignments().some((a) => a.topic === topic && a.partition === partition),
      position: consumer.position([{ topic, partition }])[0]?.offset ?? null,
    };
  } catch (err) {
    return { librdkafkaAssigned: `unknown: ${errorMessage(err)}`, position: null };
  }
}

/** What the watch needs of a consumer (BatchConsumer). */
export interface FetchWatched {
  fetchStalls(): Promise<FetchStall[]>;
  /** One partition's state for the report (its buffer, librdkafka's assignment and position). */
  describe(partition: number): Record<string, unknown>;
}

/**
 * Asks `consumer` every WATCH_INTERVAL_MS (an unref'd timer) for stalled partitions; on the first
 * stall logs an error naming them with their figures and state and calls `onStalled` once with a
 * retriable SERVICE_UNREACHABLE error. `stop` before the consumer is closed.
 */
export function watchFetch(
  consumer: FetchWatched,
  o: { topic: string; who: string; log: Logger; onStalled(err: PipelineError): void },
): { stop(): void } {
  let over = false;
  let timer: NodeJS.Timeout | undefined;
  const stop = () => {
    over = true;
    clearInterval(timer);
  };
  const check = async () => {
    if (over) return;
    const stalls = await consumer.fetchStalls().catch((err: unknown) => {
      o.log.debug({ err: errorMessage(err), topic: o.topic }, 'fetch-stall check failed');
      return [];
    });
    if (stalls.length === 0 || over) return;
    stop();
    const figures = stalls
      .map(
        (s) =>
          `${s.partition} (position ${s.position}, stable end ${s.stableEnd}, nothing fetched for ${Math.round(s.idleMs / 1000)} s)`,
      )
      .join(', ');
    const message = `${o.who} is not fetching ${o.topic}: partitions ${figures}, although the broker holds committed records past the position; restarting with a fresh client`;
    o.log.error(
      {
        topic: o.topic,
        stalls: stalls.map((s) => ({
          ...s,
          stalledMs: Math.round(s.stalledMs),
          idleMs: Math.round(s.idleMs),
          consumer: consumer.describe(s.partition),
        })),
      },
      `fetch stalled: ${message}`,
    );
    o.onStalled(
      new PipelineError('SERVICE_UNREACHABLE', message, {
        retriable: true,
        details: { topic: o.topic, partitions: stalls.map((s) => s.partition) },
      }),
    );
  };
  timer = setInterval(() => void check(), WATCH_INTERVAL_MS);
  timer.unref();
  return { stop };
}
