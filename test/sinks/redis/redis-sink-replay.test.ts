import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MIN, TOPIC, batch, event, reader, snapshot, startSink, CUR_MINUTE, redisTestFile } from './redis-fixtures.js';

/**
 * The Redis sink's aggregates under replays against the real Redis: the same batch again, by the
 * same or a restarted sink; overlaps, also from an instance that never read the stored offset;
 * backfill re-sends and duplicates inside a batch (deduped by event id within the window). Each
 * test uses its own key prefix under the file's isolated REDIS_KEY_PREFIX; the clock is pinned to
 * the middle of the current minute.
 */

const { env, admin, prefix } = redisTestFile();

describe('redis sink aggregates', () => {
  it('changes nothing when a batch is replayed, by the same or a restarted sink, and counts only the new part of an overlap', async () => {
    const p = prefix();
    const events = Array.from({ length: 12 }, (_, i) =>
      event({
        id: 100 + i,
        content: `C${i % 3}`,
        user: `u${i % 5}`,
        type: i % 4 === 0 ? 'finish' : 'play',
        ts: CUR_MINUTE - (i % 4) * MIN + i * 1000,
        eng: i + 0.5,
        pct: i,
      }),
    );
    const sink = await startSink(env().config, p);
    const first = batch(events.slice(0, 8), 0);
    await sink.write(first);
    const afterFirst = await snapshot(admin(), p);
    await sink.write(first);
    assert.deepEqual(await snapshot(admin(), p), afterFirst, 'same sink, same batch');
    await sink.close();
    const restarted = await startSink(env().config, p);
    try {
      assert.deepEqual(await restarted.storedOffsets(TOPIC, [0]), new Map([[0, '8']]));
      await restarted.write(first);
      assert.deepEqual(await snapshot(admin(), p), afterFirst, 'restarted sink, same batch');
      // A batch overlapping the stored offset: offsets 5-7 were applied, 8-11 are new.
      await restarted.write(batch(events.slice(5), 5));
      const r = reader(admin(), p);
      assert.equal(await r.windowCount(), 12);
      const reference = prefix();
      const once = await startSink(env().config, reference);
      await once.write(batch(events, 0));
      await once.close();
      const strip = (s: Record<string, unknown>, pre: string) =>
        Object.fromEntries(Object.entries(s).map(([k, v]) => [k.slice(pre.length), v]));
      const isState = (k: string) => k.endsWith('rs:state'); // differs only by its random epoch
      assert.deepEqual(
        strip(await snapshot(admin(), p, isState), p),
        strip(await snapshot(admin(), reference, isState), reference),
        'equal to writing each event once',
      );
    } finally {
      await restarted.close();
    }
  });

  it('counts only the new part of an overlap written by an instance that never read the stored offset', async () => {
    const p = prefix();
    const events = Array.from({ length: 10 }, (_, i) =>
      event({
        id: 300 + i,
        content: `O${i % 2}`,
        user: `u${i % 3}`,
        ts: CUR_MINUTE - (i % 2) * MIN + i * 1000,
        eng: i,
        pct: i,
      }),
    );
    const a = await startSink(env().config, p);
    const b = await startSink(env().config, p);
    try {
      await a.write(batch(events.slice(0, 6), 0));
      // b knows neither the epoch nor the stored offset (6): the script names the overlap and b
      // sends offsets 6-9 only.
      await b.write(batch(events.slice(3), 3));
      const reference = prefix();
      const once = await startSink(env().config, reference);
      await once.write(batch(events, 0));
      await once.close();
      const strip = (s: Record<string, unknown>, pre: string) =>
        Object.fromEntries(Object.entries(s).map(([k, v]) => [k.slice(pre.length), v]));
      const isState = (k: string) => k.endsWith('rs:state');
      assert.deepEqual(
        strip(await snapshot(admin(), p, isState), p),
        strip(await snapshot(admin(), reference, isState), reference),
      );
      assert.deepEqual(await b.storedOffsets(TOPIC, [0]), new Map([[0, '10']]));
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('ignores backfill re-sends and duplicates inside a batch (dedupe by event id within the window)', async () => {
    const p = prefix();
    const spec = (i: number) => ({
      id: 500 + i,
      content: `K${i % 2}`,
      user: `u${i}`,
      ts: CUR_MINUTE - (i % 3) * MIN + i * 100,
      eng: 2 * i,
      pct: i,
    });
    const stream = Array.from({ length: 6 }, (_, i) => event(spec(i)));
    const sink = await startSink(env().config, p);
    try {
      await sink.write(batch([...stream, event(spec(0))], 0, 0)); // event 500 twice in one batch
      const r = reader(admin(), p);
      const view = async () => ({
        top: await r.topContent({ limit: 10 }),
        k0: await r.contentStats('K0'),
        k1: await r.contentStats('K1'),
        count: await r.windowCount(),
        recent: (await r.recentEvents('K0', 10)).map((e) => [e.event_id, e.origin]),
      });
      const expected = await view();
      assert.equal(expected.count, 6);
      const isState = (k: string) => k.endsWith('rs:state');
      const data = await snapshot(admin(), p, isState);
      // The backfill re-sends the same events (other offsets, other partition, origin backfill),
      // and the stream delivers one again.
      const backfill = stream.map((e) => ({
        ...e,
        origin: 'backfill' as const,
        processed_ts_ms: e.processed_ts_ms + 1,
      }));
      await sink.write(batch(backfill, 40, 1));
      await sink.write(batch([stream[3]!, ...backfill.slice(0, 2)], 7, 0));
      assert.deepEqual(await view(), expected);
      assert.deepEqual(await snapshot(admin(), p, isState), data);
      assert.deepEqual(
        await sink.storedOffsets(TOPIC, [0, 1]),
        new Map([
          [0, '10'],
          [1, '46'],
        ]),
      );
    } finally {
      await sink.close();
    }
  });
});
