import type { Config } from '../config/load.js';
import type { DlqEntry } from '../core/types.js';
import { ensureTopics } from '../kafka/admin.js';
import { toDlqEntry } from '../runtime/dlq-writer.js';
import { PageProducer, type PageMessage } from './page-producer.js';
import { rejectedRowOrigin, type BackfillPage, type BackfillTarget, type PageReport } from './target.js';

/**
 * The default delivery: each page's events go to the enriched topic (keyed by content id, origin
 * `backfill`) and its rejected rows to the DLQ topic, confirmed by the broker before `deliver`
 * resolves. Every sink then takes the events as usual: the warehouse and the external system
 * dedupe on the event id, Redis keeps what falls in its live window and dedupes too.
 * One page in flight: the producer's flush, which confirms a page, waits for everything queued.
 * Nothing is parked here: what a sink refuses, that sink's runner parks (its own DLQ count).
 */
export async function openTopicTarget(config: Config): Promise<BackfillTarget> {
  await ensureTopics(config);
  const producer = new PageProducer(config, `${config.KAFKA_CLIENT_ID}-backfill`, config.KAFKA_COMPRESSION);
  await producer.connect();
  return {
    name: 'topic',
    maxInFlight: 1,
    async deliver(page: BackfillPage): Promise<PageReport> {
      const now = new Date();
      const enriched: PageMessage[] = page.events.map((e) => ({ key: e.content_id, value: JSON.stringify(e) }));
      const rejected: PageMessage[] = page.rejected.map(({ row, error }) => {
        const origin = rejectedRowOrigin(row);
        const entry: DlqEntry = toDlqEntry('backfill', { origin, error, attempts: 1 }, now);
        return { key: origin.key ?? row.id, value: JSON.stringify(entry) };
      });
      const batches = [];
      if (enriched.length > 0) batches.push({ topic: config.KAFKA_TOPIC_ENRICHED, messages: enriched });
      if (rejected.length > 0) batches.push({ topic: config.KAFKA_TOPIC_DLQ, messages: rejected });
      // Resolves once every message is acknowledged by the broker (acks=all), else throws.
      await producer.deliver(batches);
      return { parked: {} };
    },
    close: () => producer.disconnect(),
  };
}
