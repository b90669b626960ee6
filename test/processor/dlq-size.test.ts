import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PipelineError } from '../../src/core/errors.js';
import { createLogger } from '../../src/core/logger.js';
import { TRUNCATED_VALUE, type DlqEntry, type EnrichedEvent } from '../../src/core/types.js';
import { ensureTopics } from '../../src/kafka/admin.js';
import { processorDlqEntry } from '../../src/processor/dlq.js';
import { startProcessor, type Processor } from '../../src/processor/processor.js';
import { toDlqEntry } from '../../src/runtime/dlq-writer.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { InputWriter, changeValue, contentMsg, eventMsg, eventRow, readTopic, waitForTopic } from './kafka-helpers.js';

/**
 * DLQ entries fit in a Kafka record whatever the size of the record they park: a value too large
 * for that is kept as a prefix, flagged, with its size (the whole record stays at the entry's
 * topic/partition/offset). On the real stack: a huge bad record is parked and the processor goes
 * on; an event the CDC marked as truncated is enriched with the `truncated_raw_payload` flag.
 */

const LIMIT = 1_000_000;
const err = new PipelineError('INVALID_VALUE', `UNKNOWN_EVENT_TYPE: ${'z'.repeat(50_000)}`);

describe('DLQ entries of huge records', { timeout: 120_000 }, () => {
  it('an entry keeps a prefix of a value too large to fit, flagged, and fits itself', () => {
    const value = Buffer.alloc(2 * 1024 * 1024, 0x61);
    const key = Buffer.from('{"id":"7"}');
    const record = { topic: 't', partition: 0, offset: '5', key, value, priorAttempts: 0 };
    for (const entry of [
      processorDlqEntry(record, err, Date.now(), LIMIT),
      toDlqEntry(
        'sink:redis',
        { origin: { ...record, key: key.toString(), replay: false }, error: err, attempts: 3 },
        new Date(),
        LIMIT,
      ),
    ]) {
      const bytes = Buffer.byteLength(JSON.stringify(entry)) + key.length;
      assert.ok(bytes <= LIMIT, `the entry takes ${bytes} bytes, within ${LIMIT}`);
      assert.equal(entry.value_truncated, true);
      assert.equal(entry.value_bytes, value.length);
      const kept = Buffer.from(entry.value_base64 ?? '', 'base64');
      assert.ok(kept.length > 700_000, `most of what fits is kept (${kept.length} bytes)`);
      assert.deepEqual(kept, value.subarray(0, kept.length), 'a prefix of the original');
      assert.ok(entry.reason.length <= 1000, 'the reason is capped');
      assert.ok(entry.reason.startsWith('UNKNOWN_EVENT_TYPE: '), 'and still starts with its token');
    }
  });

  it('a value that fits is kept whole, without the flag', () => {
    const value = Buffer.alloc(500_000, 0x62);
    const entry = processorDlqEntry(
      { topic: 't', partition: 0, offset: '1', key: null, value, priorAttempts: 0 },
      err,
      Date.now(),
      LIMIT,
    );
    assert.deepEqual(Buffer.from(entry.value_base64 ?? '', 'base64'), value);
    assert.equal(entry.value_truncated, undefined);
    assert.equal(entry.value_bytes, undefined);
  });

  describe('on the real stack', () => {
    let env: TestEnv;
    let input: InputWriter;
    let proc: Processor | undefined;
    const contentId = '00000000-0000-4000-8000-000000000001';

    before(async () => {
      env = await createTestEnv({ CONTENT_WAIT_MS: '1500', PROCESSOR_SESSION_TIMEOUT_MS: '6000' });
      await ensureTopics(env.config);
      input = await InputWriter.open(env.config);
      await input.txn([
        contentMsg(env.config, {
          id: contentId,
          slug: 'c',
          title: 'C',
          content_type: 'video',
          length_seconds: 100,
          publish_ts: '2025-01-01T00:00:00Z',
        }),
      ]);
      proc = await startProcessor(env.config, createLogger('error', 'test-dlq-size'));
    });

    after(async () => {
      await proc?.stop();
      await input?.close();
      await env?.cleanup();
    });

    it('parks a huge bad record in an entry that fits, enriches a marked event, and goes on', async () => {
      const c = env.config;
      const huge = changeValue(
        'engagement_events',
        'c',
        null,
        eventRow({
          id: '1',
          content_id: contentId,
          event_type: 'teleport',
          raw_payload: JSON.stringify({ pad: 'y'.repeat(980_000) }),
        }),
      );
      assert.ok(Buffer.byteLength(huge) > 0.75 * LIMIT, 'too large for its base64 to fit an entry');
      const marked = JSON.stringify({
        ...(JSON.parse(
          changeValue(
            'engagement_events',
            'c',
            null,
            eventRow({ id: '2', content_id: contentId, raw_payload: TRUNCATED_VALUE }),
          ),
        ) as object),
        truncated: {
          fields: ['after.raw_payload'],
          original_bytes: 2_097_900,
          limit_bytes: 983_616,
          ref: { db: 'engagement_db', schema: 'public', table: 'engagement_events', key: { id: '2' }, lsn: 1 },
        },
      });
      await input.txn([
        { topic: c.KAFKA_TOPIC_ENGAGEMENT_EVENTS, key: '{"id":"1"}', value: huge },
        { topic: c.KAFKA_TOPIC_ENGAGEMENT_EVENTS, key: '{"id":"2"}', value: marked },
        eventMsg(c, { id: '3', content_id: contentId }),
      ]);

      const entries = await waitForTopic<DlqEntry>(c.kafkaBrokers, c.KAFKA_TOPIC_DLQ, (v) => v.length >= 1, 30_000);
      const entry = entries[0];
      assert.ok(entry);
      assert.match(entry.reason, /^UNKNOWN_EVENT_TYPE: /);
      assert.equal(entry.value_truncated, true);
      assert.equal(entry.value_bytes, Buffer.byteLength(huge));
      assert.deepEqual(
        Buffer.from(entry.value_base64 ?? '', 'base64'),
        Buffer.from(huge).subarray(0, Buffer.from(entry.value_base64 ?? '', 'base64').length),
      );
      const raw = await readTopic(c.kafkaBrokers, c.KAFKA_TOPIC_DLQ);
      assert.ok((raw[0]?.value?.length ?? Infinity) <= c.KAFKA_MESSAGE_MAX_BYTES, 'the DLQ record fits');

      const events = await waitForTopic<EnrichedEvent>(
        c.kafkaBrokers,
        c.KAFKA_TOPIC_ENRICHED,
        (v) => ['2', '3'].every((id) => v.some((e) => e.event_id === id)),
        30_000,
      );
      const two = events.find((e) => e.event_id === '2');
      assert.equal(two?.raw_payload, TRUNCATED_VALUE, 'the marker is carried as the payload');
      assert.deepEqual(two?.quality_flags, ['truncated_raw_payload']);
      assert.deepEqual(events.find((e) => e.event_id === '3')?.quality_flags, []);
      assert.equal(proc?.status().state, 'running');
    });
  });
});
