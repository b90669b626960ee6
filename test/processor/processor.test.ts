import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../../src/core/logger.js';
import type { DlqEntry, EnrichedEvent } from '../../src/core/types.js';
import { ensureTopics } from '../../src/kafka/admin.js';
import { processorGroupId, startProcessor, type Processor } from '../../src/processor/processor.js';
import { waitFor } from '../helpers/wait.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { committedOffsets, highWatermarks } from '../helpers/sink-harness.js';
import {
  InputWriter,
  changeValue,
  contentMsg,
  eventMsg,
  eventRow,
  readTopic,
  waitForGroupCaughtUp,
  waitForTopic,
  type Msg,
  testContent as content,
  testUuid as uuid,
} from './kafka-helpers.js';

/**
 * The stream processor in-process against the real Kafka: enrichment of inserted rows, a content
 * change mid-stream, content and event in one transaction, bad input → DLQ with reasons and the
 * original bytes, and stop() draining and committing (a restarted processor repeats nothing).
 */

describe('stream processor (real Kafka)', { timeout: 120000 }, () => {
  let env: TestEnv;
  let input: InputWriter;
  let proc: Processor | undefined;
  const log = createLogger('warn', 'test-processor');
  const enriched = (pred: (e: EnrichedEvent[]) => boolean, timeoutMs = 20000) =>
    waitForTopic<EnrichedEvent>(env.config.kafkaBrokers, env.config.KAFKA_TOPIC_ENRICHED, pred, timeoutMs);
  const byId = (events: EnrichedEvent[], id: string) => events.filter((e) => e.event_id === id);

  before(async () => {
    env = await createTestEnv({
      CONTENT_WAIT_MS: '1500',
      PROCESSOR_SESSION_TIMEOUT_MS: '6000',
      PROCESSOR_MAX_BATCH: '500',
    });
    await ensureTopics(env.config);
    input = await InputWriter.open(env.config);
    await input.txn([
      contentMsg(env.config, content(1, 100)),
      contentMsg(env.config, content(2, null)),
      contentMsg(env.config, content(3, 0)),
    ]);
    proc = await startProcessor(env.config, log);
  });

  after(async () => {
    await proc?.stop();
    await input?.close();
    await env?.cleanup();
  });

  it('enriches inserted rows: join, engagement, flags, key = content id', async () => {
    const c = env.config;
    await input.txn([
      eventMsg(c, { id: '1', content_id: uuid(1), duration_ms: 50000, event_ts: '2025-06-15T10:20:30.123456Z' }),
      eventMsg(c, { id: '2', content_id: uuid(2), duration_ms: 50000 }),
      eventMsg(c, { id: '3', content_id: uuid(3), duration_ms: 50000, user_id: null }),
      eventMsg(c, { id: '4', content_id: uuid(1), duration_ms: 150000, campaign: 'spring' }, 'r'),
    ]);
    const events = await enriched((e) => ['1', '2', '3', '4'].every((id) => byId(e, id).length > 0));
    const [e1, e2, e3, e4] = ['1', '2', '3', '4'].map((id) => byId(events, id)[0] as EnrichedEvent);
    assert.equal(e1?.engagement_seconds, 50);
    assert.equal(e1?.engagement_pct, 50);
    assert.equal(e1?.content_slug, 'c-1');
    assert.equal(e1?.content_title, 'Content 1');
    assert.equal(e1?.length_seconds, 100);
    assert.equal(e1?.event_ts, '2025-06-15T10:20:30.123456Z');
    assert.equal(e1?.event_hour, '2025-06-15T10:00:00.000Z');
    assert.equal(e1?.origin, 'stream');
    assert.ok((e1?.source_ts_ms ?? 0) > 0 && (e1?.processed_ts_ms ?? 0) >= (e1?.source_ts_ms ?? Infinity));
    assert.deepEqual(e1?.raw_payload, { src: 'test' });
    assert.deepEqual(e1?.quality_flags, []);
    assert.equal(e2?.engagement_pct, null);
    assert.deepEqual(e2?.quality_flags, ['missing_length']);
    assert.deepEqual(e3?.quality_flags, ['missing_user', 'non_positive_length']);
    assert.equal(e4?.engagement_pct, 150);
    assert.deepEqual(e4?.quality_flags, ['pct_above_100']);
    assert.deepEqual(e4?.extra, { campaign: 'spring' });
    const raw = await readTopic(c.kafkaBrokers, c.KAFKA_TOPIC_ENRICHED);
    for (const m of raw) {
      const ev = JSON.parse((m.value as Buffer).toString()) as EnrichedEvent;
      assert.equal(String(m.key), ev.content_id, 'enriched records are keyed by content id');
    }
  });

  it('applies a content change to the events committed after it, and joins content and event of one transaction', async () => {
    const c = env.config;
    await input.txn([eventMsg(c, { id: '10', content_id: uuid(1), duration_ms: 50000 })]);
    // Back to back, no waiting: the update, then an event in a later transaction.
    await input.txn([contentMsg(c, content(1, 200), 'u')]);
    await input.txn([eventMsg(c, { id: '11', content_id: uuid(1), duration_ms: 50000 })]);
    // A new content row and its first event in the same transaction.
    await input.txn([contentMsg(c, content(4, 10)), eventMsg(c, { id: '12', content_id: uuid(4), duration_ms: 5000 })]);
    const events = await enriched((e) => ['10', '11', '12'].every((id) => byId(e, id).length > 0));
    assert.equal(byId(events, '10')[0]?.engagement_pct, 50, 'event before the change: old length');
    assert.equal(byId(events, '11')[0]?.length_seconds, 200);
    assert.equal(byId(events, '11')[0]?.engagement_pct, 25, 'event after the change: new length');
    assert.equal(byId(events, '12')[0]?.engagement_pct, 50);
    assert.equal(byId(events, '12')[0]?.content_slug, 'c-4');
  });

  it('sends bad input to the DLQ with the reason, the original bytes and where it came from', async () => {
    const c = env.config;
    const topic = c.KAFKA_TOPIC_ENGAGEMENT_EVENTS;
    const garbage = Buffer.from([0x7b, 0xff, 0x00, 0x13]);
    const future = new Date(Date.now() + 3 * 86400000).toISOString();
    const bad: Array<{ msg: Msg; reason: string; code: string }> = [
      { msg: { topic, key: '{"id":"100"}', value: garbage }, reason: 'UNDECODABLE', code: 'DECODE_FAILED' },
      {
        msg: { topic, key: '{"id":"101"}', value: '{"op":"c", "after": {' },
        reason: 'UNDECODABLE',
        code: 'DECODE_FAILED',
      },
      {
        msg: eventMsg(c, { id: '102', content_id: uuid(1), event_ts: null }),
        reason: 'MISSING_FIELD',
        code: 'MISSING_FIELD',
      },
      {
        msg: eventMsg(c, { id: '103', content_id: uuid(1), event_type: 'skip' }),
        reason: 'UNKNOWN_EVENT_TYPE',
        code: 'INVALID_VALUE',
      },
      {
        msg: eventMsg(c, { id: '104', content_id: uuid(1), duration_ms: -5 }),
        reason: 'NEGATIVE_DURATION',
        code: 'INVALID_VALUE',
      },
      {
        msg: eventMsg(c, { id: '105', content_id: uuid(1), event_ts: future }),
        reason: 'EVENT_TS_IN_FUTURE',
        code: 'INVALID_VALUE',
      },
      {
        msg: eventMsg(c, { id: '106', content_id: uuid(1), event_ts: '1999-06-01T00:00:00Z' }),
        reason: 'EVENT_TS_BEFORE_2000',
        code: 'INVALID_VALUE',
      },
      { msg: eventMsg(c, { id: '107', content_id: null }), reason: 'NULL_CONTENT_ID', code: 'MISSING_FIELD' },
      { msg: eventMsg(c, { id: '108', content_id: uuid(999) }), reason: 'UNKNOWN_CONTENT', code: 'UNKNOWN_CONTENT' },
      {
        msg: {
          topic,
          key: '{"id":"1"}',
          value: changeValue(
            'engagement_events',
            'u',
            null,
            eventRow({ id: '1', content_id: uuid(1), duration_ms: 1 }),
          ),
        },
        reason: 'EVENT_UPDATED',
        code: 'UNSUPPORTED_CHANGE',
      },
      {
        msg: {
          topic,
          key: '{"id":"2"}',
          value: changeValue('engagement_events', 'd', eventRow({ id: '2', content_id: uuid(2) }), null),
        },
        reason: 'EVENT_DELETED',
        code: 'UNSUPPORTED_CHANGE',
      },
    ];
    await input.txn([
      ...bad.map((b) => b.msg),
      { topic, key: '{"id":"2"}', value: null },
      eventMsg(c, { id: '109', content_id: uuid(1) }),
    ]);

    const entries = await waitForTopic<DlqEntry>(c.kafkaBrokers, c.KAFKA_TOPIC_DLQ, (v) => v.length >= bad.length);
    assert.equal(entries.length, bad.length, 'one DLQ entry per bad record; the tombstone is skipped, not parked');
    const inputs = await readTopic(c.kafkaBrokers, topic);
    for (const b of bad) {
      const entry = entries.find((e) => e.key === b.msg.key && e.reason.startsWith(`${b.reason}: `));
      assert.ok(
        entry,
        `DLQ entry ${b.reason} for key ${b.msg.key}: got ${JSON.stringify(entries.map((e) => [e.key, e.reason]))}`,
      );
      assert.equal(entry.code, b.code);
      assert.equal(entry.stage, 'processor');
      assert.equal(entry.topic, topic);
      const original = inputs.find((m) => m.partition === entry.partition && String(m.offset) === entry.offset);
      assert.ok(original, 'topic/partition/offset point at the original record');
      const bytes = typeof b.msg.value === 'string' ? Buffer.from(b.msg.value) : (b.msg.value as Buffer);
      assert.deepEqual(Buffer.from(entry.value_base64 ?? '', 'base64'), bytes, 'original bytes kept');
      assert.deepEqual(original.value, bytes);
    }
    // A good record after the bad ones still goes through; none of the bad ones does.
    const events = await enriched((e) => byId(e, '109').length > 0);
    for (const id of ['100', '101', '102', '103', '104', '105', '106', '107', '108'])
      assert.equal(byId(events, id).length, 0, `event ${id} not enriched`);
    assert.equal(byId(events, '1').length, 1, 'the update did not re-emit event 1');
    const status = proc?.status() ?? {};
    assert.equal(status.state, 'running');
    assert.ok(Number(status.dlq) >= bad.length && Number(status.skipped) >= 1);
    // Idle, the lag counts no transaction marker (the input is written in transactions, so each
    // partition ends on one): it reaches 0 rather than staying at one per partition.
    await waitFor("the idle processor's lag to reach 0", () => proc?.status().lag, {
      until: (lag) => Number(lag) === 0,
      timeoutMs: 10000,
    });
    // And the group's committed offsets reach the high watermarks too (an offsets-only transaction
    // once a partition has been idle for a second), so external lag tools also read 0.
    const group = processorGroupId(c);
    const high = await highWatermarks(c, topic);
    let committed = new Map<number, string>();
    await waitFor(
      'the idle processor group commits past the markers',
      async () => {
        committed = await committedOffsets(c, group, topic);
        return [...high].every(([p, h]) => Number(h) === 0 || committed.get(p) === String(h));
      },
      { timeoutMs: 15000, describe: () => ({ high: [...high], committed: [...committed] }) },
    );
  });

  it('stop() drains and commits; a restarted processor repeats nothing', async () => {
    const c = env.config;
    await input.txn(
      Array.from({ length: 200 }, (_, i) => eventMsg(c, { id: String(1000 + i), content_id: uuid(1 + (i % 4)) })),
    );
    await enriched((e) => byId(e, '1199').length > 0);
    await proc?.stop();
    proc = undefined;
    await waitForGroupCaughtUp(c, processorGroupId(c), c.KAFKA_TOPIC_ENGAGEMENT_EVENTS, 10000);

    proc = await startProcessor(c, log);
    await input.txn([eventMsg(c, { id: '2000', content_id: uuid(1) })]);
    const events = await enriched((e) => byId(e, '2000').length > 0);
    const counts = new Map<string, number>();
    for (const e of events) counts.set(e.event_id, (counts.get(e.event_id) ?? 0) + 1);
    const dupes = [...counts].filter(([, n]) => n > 1);
    assert.deepEqual(dupes, [], 'every event id exactly once in the enriched topic');
    assert.equal(counts.size, 4 + 3 + 1 + 200 + 1, 'all valid events enriched');
  });
});
