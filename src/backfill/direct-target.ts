import type { Config } from '../config/load.js';
import { errorMessage, PipelineError, toPipelineError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { EnrichedEvent } from '../core/types.js';
import { ensureTopics } from '../kafka/admin.js';
import { deliverBatch, type DeliveryContext, type DeliveryItem, type PendingBatch } from '../runtime/batch-delivery.js';
import { createDlqWriter, type DlqWriter } from '../runtime/dlq-writer.js';
import { retry } from '../runtime/retry.js';
import { Semaphore } from '../runtime/semaphore.js';
import type { Decoded, DlqOrigin } from '../runtime/sink-decode.js';
import { sinkMetrics } from '../runtime/sink-metrics.js';
import { resolveBatching, resolveRetryPolicy, resolveWriteConcurrency } from '../runtime/sink-runner-options.js';
import {
  DIRECT_OFFSET,
  DIRECT_PARTITION,
  type Sink,
  type SinkFactory,
  type SinkRecord,
} from '../core/sink-contract.js';
import { isSourceImporter, type SourceImportResult } from '../sinks/source-import.js';
import {
  DEFAULT_PAGE_ROWS,
  rejectedRowOrigin,
  SOURCE_TOPIC,
  type BackfillPage,
  type BackfillTarget,
  type PageReport,
  type SourceFilePage,
} from './target.js';

/**
 * `--direct <sinks>`: the backfill writes the named sinks itself, in this process, through the
 * same contract and settling code as `engage sink` (check → DLQ confirmed → write with the sink's
 * retry policy → DLQ when retries run out; src/runtime/batch-delivery.ts) — without the enriched
 * topic, its JSON and its consumer, which cost most of a backfill's CPU. Only sinks idempotent on
 * the event's identity, (event_id, event_ts) (`SinkFactory.dedupesByEventId`: the warehouse, the external system) can be written
 * so; a page delivered again after a crash adds nothing to them. Sinks not named receive nothing
 * from such a run.
 *
 * Batches: a page goes to each sink in writes of `maxBulkRecords` (or its batch size), all of a
 * page's writes at once up to the sink's write concurrency, every sink in parallel. There is no
 * Kafka position, so a write is identified as topic `backfill:<range>`, partition -1, next offset
 * = the events of the range delivered so far; each record's Kafka partition and offset are -1
 * (DIRECT_PARTITION / DIRECT_OFFSET; the warehouse's lineage columns say so).
 * DuckDB has one writer: while `engage sink warehouse` holds the file, a direct backfill into it
 * fails at start with a message saying so (BigQuery has no such limit).
 */

/** A sink that lost its state mid-page (a dropped table): the page is written again this often. */
const STATE_LOST_RETRY = { attempts: 5, baseMs: 500, maxMs: 5000, jitter: 'full' } as const;

interface DirectSink {
  factory: SinkFactory;
  sink: Sink;
  ctx: DeliveryContext;
  maxRecords: number;
}

/** The factories for `names`; a USAGE error for a sink that cannot be written without Kafka. */
export function directFactories(names: readonly string[], lookup: (name: string) => SinkFactory): SinkFactory[] {
  if (names.length === 0)
    throw new PipelineError('USAGE', '--direct needs at least one sink name (e.g. --direct warehouse)');
  return [...new Set(names)].map((name) => {
    const factory = lookup(name);
    if (!factory.dedupesByEventId) {
      throw new PipelineError(
        'USAGE',
        `sink ${JSON.stringify(name)} cannot be written by --direct: it counts each event once by its Kafka offset, not by its event id; backfill it through the enriched topic (leave out --direct)`,
      );
    }
    return factory;
  });
}

/**
 * `bulk`: when every sink imports source rows (src/sinks/source-import.ts; the DuckDB warehouse),
 * the target offers `deliverSource`, and the run hands it pages as COPY wrote them.
 */
export async function openDirectTarget(
  config: Config,
  factories: readonly SinkFactory[],
  rangeKey: string,
  log: Logger,
  opts: { bulk: boolean; signal?: AbortSignal },
): Promise<BackfillTarget> {
  const { signal } = opts;
  const name = `direct:${factories.map((f) => f.name).join(',')}`;
  await ensureTopics(config); // the DLQ topic
  const dlq: DlqWriter = await createDlqWriter(config, 'backfill');
  const sinks: DirectSink[] = [];
  const close = async () => {
    for (const s of sinks)
      await s.sink
        .close()
        .catch((err: unknown) => log.warn({ sink: s.factory.name, err: errorMessage(err) }, 'closing a sink failed'));
    await dlq.close().catch(() => undefined);
  };
  try {
    for (const factory of factories) {
      const slog = log.child({ sink: factory.name, direct: true });
      const sink = factory.create({ config, log: slog });
      sinks.push({
        factory,
        sink,
        maxRecords: factory.maxBulkRecords?.(config) ?? resolveBatching(config, factory, {}).maxRecords,
        ctx: deliveryContext(config, factory, sink, dlq, slog, signal),
      });
      await sink.start().catch((err: unknown) => {
        const e = toPipelineError(err);
        // The stream's sink waits for a locked file (an outage); a backfill a person started says why at once.
        if (e.code !== 'SERVICE_MISCONFIGURED' && e.details?.locked !== true) throw e;
        // e.g. the DuckDB file, which one process at a time may open, held by the running sink
        const hint = `a direct backfill opens the ${factory.name} sink in this process: stop \`engage sink ${factory.name}\` while it runs, or backfill through the topic (leave out --direct)`;
        throw new PipelineError('SERVICE_MISCONFIGURED', `${e.message} — ${hint}`, { cause: e });
      });
    }
  } catch (err) {
    await close();
    throw err;
  }

  const topic = `backfill:${rangeKey}`;
  /** Resolves with the number of the items the sink parked in the DLQ. */
  const deliverTo = async (s: DirectSink, items: DeliveryItem[], deliveredBefore: number): Promise<number> => {
    const chunks: PendingBatch[] = [];
    for (let start = 0; start < items.length; start += s.maxRecords) {
      const part = items.slice(start, start + s.maxRecords);
      chunks.push({
        topic,
        partition: DIRECT_PARTITION,
        items: part,
        nextOffset: String(deliveredBefore + start + part.length),
      });
    }
    const parked = await Promise.all(chunks.map((batch) => settle(s, batch)));
    return parked.reduce((a, b) => a + b, 0);
  };

  // A page is one write per sink that takes bulk writes (the DuckDB warehouse: one row group).
  const bulk = factories.map((f) => f.maxBulkRecords?.(config)).filter((n): n is number => n !== undefined);
  const importers = sinks.flatMap((s) => (isSourceImporter(s.sink) ? [{ ctx: s.ctx, sink: s.sink }] : []));
  // A page every sink imported, or null: one declined it or failed (counted, logged), and the
  // page goes row by row, where the sinks' retry policies and the DLQ apply.
  const deliverSource = async (page: SourceFilePage): Promise<(PageReport & { rows: number }) | null> => {
    const results = await Promise.all(
      importers.map(async (s): Promise<SourceImportResult | null> => {
        const t0 = performance.now();
        try {
          const r = await s.sink.importSourcePage({ ...page, topic });
          s.ctx.metrics.fastPath[r.kind === 'written' ? 'written' : 'declined'].inc();
          if (r.kind === 'written') {
            s.ctx.metrics.recordsIn.inc(r.rows);
            s.ctx.metrics.recordsOut.inc(r.rows);
            s.ctx.metrics.batchSeconds.observe((performance.now() - t0) / 1000);
          }
          return r;
        } catch (err) {
          s.ctx.metrics.fastPath.failed.inc();
          s.ctx.log.warn({ err: errorMessage(err) }, 'the bulk import of a page failed: delivering it row by row');
          return null;
        }
      }),
    );
    const rows = results.map((r) => (r?.kind === 'written' ? r.rows : null));
    return rows.every((n) => n !== null) ? { parked: {}, rows: rows[0] ?? 0 } : null;
  };
  return {
    name,
    maxInFlight: 2,
    pageRows: Math.max(DEFAULT_PAGE_ROWS, ...bulk),
    ...(opts.bulk && importers.length === sinks.length ? { deliverSource } : {}),
    async deliver(page: BackfillPage): Promise<PageReport> {
      if (page.rejected.length > 0) {
        await dlq.send(
          'backfill',
          page.rejected.map(({ row, error }) => ({ origin: rejectedRowOrigin(row), error, attempts: 1 })),
        );
      }
      const items: DeliveryItem[] = page.events.map((event) => new DirectItem(topic, event));
      for (const s of sinks) s.ctx.metrics.recordsIn.inc(items.length);
      const parked = await Promise.all(sinks.map((s) => deliverTo(s, items, page.deliveredBefore)));
      const report: PageReport = { parked: {} };
      sinks.forEach((s, i) => {
        if ((parked[i] ?? 0) > 0) report.parked[s.ctx.stage] = parked[i] as number;
      });
      return report;
    },
    close,
  };
}

function deliveryContext(
  config: Config,
  factory: SinkFactory,
  sink: Sink,
  dlq: DlqWriter,
  log: Logger,
  signal?: AbortSignal,
): DeliveryContext {
  return {
    sink,
    stage: `sink:${factory.name}`,
    dlq,
    metrics: sinkMetrics(factory.name),
    log,
    retryPolicy: resolveRetryPolicy(config, factory, {}),
    writeLock: new Semaphore(resolveWriteConcurrency(config, factory, {})),
    commit: () => undefined, // the backfill saves its own progress once the whole page is settled
    owned: () => !signal?.aborted,
    signal,
    onError: () => undefined, // deliverBatch logs each failure; the backfill reports the one it stops on
  };
}

/**
 * One chunk settled (written, or parked in the DLQ): resolves with the records parked, else
 * throws: progress is then not saved.
 */
async function settle(s: DirectSink, batch: PendingBatch): Promise<number> {
  return retry(
    async () => {
      const outcome = await deliverBatch(s.ctx, batch);
      if (outcome.kind === 'settled') return outcome.dlq;
      if (outcome.kind === 'state-lost')
        throw new PipelineError('SINK_STATE_LOST', outcome.error.message, { retriable: true, cause: outcome.error });
      throw new PipelineError(
        'SINK_WRITE_FAILED',
        `backfill into ${s.factory.name} stopped before the page was written`,
        { retriable: true },
      );
    },
    {
      ...STATE_LOST_RETRY,
      shouldRetry: (err) => err instanceof PipelineError && err.code === 'SINK_STATE_LOST' && !s.ctx.signal?.aborted,
    },
  );
}

/**
 * One directly written event as the runtime's delivery item, its decoded record and the sink
 * record at once (one allocation per event instead of four); the DLQ origin is built on demand.
 */
class DirectItem implements DeliveryItem, SinkRecord {
  readonly kind = 'record';
  readonly offset = DIRECT_OFFSET;
  readonly partition = DIRECT_PARTITION;
  readonly key: string;

  constructor(
    readonly topic: string,
    readonly event: EnrichedEvent,
  ) {
    this.key = event.content_id;
  }

  get decoded(): Decoded {
    return this;
  }

  get record(): SinkRecord {
    return this;
  }

  get origin(): DlqOrigin {
    return new EventOrigin(this.event);
  }
}

/** A directly written record's DLQ origin: its source row, and the enriched event as the bytes
 *  (what `engage dlq replay` gives the sink again), encoded only when read (a record parked). */
class EventOrigin implements DlqOrigin {
  readonly topic = SOURCE_TOPIC;
  readonly partition = 0;
  readonly priorAttempts = 0;
  readonly replay = false;
  readonly offset: string;
  readonly key: string;

  constructor(private readonly event: EnrichedEvent) {
    this.offset = event.event_id;
    this.key = event.content_id;
  }

  get value(): Buffer {
    return Buffer.from(JSON.stringify(this.event));
  }
}
