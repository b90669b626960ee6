import type { Config } from '../config/load.js';
import type { DlqEntry } from '../core/types.js';
import { toEnrichedAvro } from '../core/enriched-avro.js';
import { ensureTopics } from '../kafka/admin.js';
import { RECORD_FRAMING_BYTES } from '../kafka/client.js';
import { openProcessorFormat } from '../processor/format.js';
import { rejection } from '../processor/reasons.js';
import { toDlqEntry } from '../runtime/dlq-writer.js';
import { PageProducer, type PageMessage } from './page-producer.js';
import { rejectedRowOrigin, SOURCE_TOPIC, type BackfillPage, type BackfillTarget, type PageReport } from './target.js';

/**
 * The default delivery: each page's events go to the enriched topic (keyed by content id, origin
 * `backfill`) and its rejected rows to the DLQ topic, confirmed by the broker before `deliver`
 * resolves. Every sink then takes the events as usual: the warehouse and the external system
 * dedupe on the event id, Redis keeps what falls in its live window and dedupes too.
 * One page in flight: the producer's flush, which confirms a page, waits for everything queued.
 * Nothing is parked here (what a sink refuses, that sink's runner parks: its own DLQ count) but an
 * event too large for a Kafka record (KAFKA_MESSAGE_MAX_BYTES, a huge raw_payload): it would fail
 * the page on every retry, so it goes to the DLQ instead (stage `backfill`, RECORD_TOO_LARGE, the
 * entry capped to fit), reported as parked. With KAFKA_VALUE_FORMAT=avro the events are written in
 * Avro, as the processor writes them (src/processor/format.ts: the same registered schema).
 */

export async function openTopicTarget(config: Config): Promise<BackfillTarget> {
  await ensureTopics(config);
  const avro = (await openProcessorFormat(config)).enriched;
  const producer = new PageProducer(config, `${config.KAFKA_CLIENT_ID}-backfill`, config.KAFKA_COMPRESSION);
  await producer.connect();
  return {
    name: 'topic',
    maxInFlight: 1,
    async deliver(page: BackfillPage): Promise<PageReport> {
      const now = new Date();
      const limit = config.KAFKA_MESSAGE_MAX_BYTES - RECORD_FRAMING_BYTES;
      const enriched: PageMessage[] = [];
      const rejected: PageMessage[] = [];
      for (const e of page.events) {
        const value = avro ? avro.encode(toEnrichedAvro(e)) : JSON.stringify(e);
        const bytes =
          (value.length + e.content_id.length) * 3 > limit
            ? Buffer.byteLength(value) + Buffer.byteLength(e.content_id)
            : 0;
        if (bytes <= limit) {
          enriched.push({ key: e.content_id, value });
          continue;
        }
        const key = JSON.stringify({ id: e.event_id });
        const origin = {
          topic: SOURCE_TOPIC,
          partition: 0,
          offset: e.event_id,
          key,
          value: typeof value === 'string' ? Buffer.from(value) : value,
          priorAttempts: 0,
          replay: false,
        };
        const error = rejection(
          'RECORD_TOO_LARGE',
          `enriched event ${e.event_id} takes ${bytes} bytes, above KAFKA_MESSAGE_MAX_BYTES (${config.KAFKA_MESSAGE_MAX_BYTES}) less framing`,
          { event_id: e.event_id },
        );
        rejected.push({
          key,
          value: JSON.stringify(
            toDlqEntry('backfill', { origin, error, attempts: 1 }, now, config.KAFKA_MESSAGE_MAX_BYTES),
          ),
        });
      }
      const tooLarge = rejected.length;
      for (const { row, error } of page.rejected) {
        const origin = rejectedRowOrigin(row);
        const entry: DlqEntry = toDlqEntry(
          'backfill',
          { origin, error, attempts: 1 },
          now,
          config.KAFKA_MESSAGE_MAX_BYTES,
        );
        rejected.push({ key: origin.key ?? row.id, value: JSON.stringify(entry) });
      }
      const batches = [];
      if (enriched.length > 0) batches.push({ topic: config.KAFKA_TOPIC_ENRICHED, messages: enriched });
      if (rejected.length > 0) batches.push({ topic: config.KAFKA_TOPIC_DLQ, messages: rejected });
      // Resolves once every message is acknowledged by the broker (acks=all), else throws.
      await producer.deliver(batches);
      return { parked: tooLarge > 0 ? { backfill: tooLarge } : {} };
    },
    close: () => producer.disconnect(),
  };
}
