import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { EventEngine } from '../../src/generator/engine.js';
import { ContentPopularity, ZipfSampler, type CatalogueItem } from '../../src/generator/popularity.js';
import { Rng } from '../../src/generator/random.js';
import { fitBefore, modelLengthMs, type GeneratedEvent } from '../../src/generator/session.js';
import { DAY_MS, HOUR_MS, MINUTE_MS, allocate, batchSlices, historicalSlices } from '../../src/generator/timeline.js';

/** The pure generator: no database, no clock. */

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
const TYPES = ['podcast', 'video', 'newsletter'] as const;
const LENGTHS = { podcast: [900, 5400], video: [60, 1800], newsletter: [120, 900] } as const;

function uuidFrom(text: string): string {
  return createHash('md5')
    .update(text)
    .digest('hex')
    .replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5');
}

/** A catalogue shaped like sql/init.sql's: 60 items, three types, a few NULL lengths. */
const catalogue: CatalogueItem[] = Array.from({ length: 60 }, (_, i) => {
  const type = TYPES[i % 3] as (typeof TYPES)[number];
  const [lo, hi] = LENGTHS[type];
  return {
    id: uuidFrom(`item-${i}`),
    content_type: type,
    length_seconds: i % 17 === 5 ? null : lo + ((i * 7919) % (hi - lo)),
    publish_ms: NOW - (i + 30) * DAY_MS,
  };
});
const byId = new Map(catalogue.map((c) => [c.id, c]));

function batch(seed: number | string, total: number): GeneratedEvent[] {
  const engine = new EventEngine({ catalogue, seed });
  const slices = batchSlices(NOW, 10 * MINUTE_MS, total, 2000);
  return [
    ...engine.chunks(
      slices.map((slice, index) => ({ slice, index })),
      NOW,
    ),
  ].flat();
}

function sessions(events: readonly GeneratedEvent[]): Map<string, GeneratedEvent[]> {
  const out = new Map<string, GeneratedEvent[]>();
  for (const e of events) {
    const list = out.get(e.raw_payload.session_id) ?? [];
    list.push(e);
    out.set(e.raw_payload.session_id, list);
  }
  return out;
}

describe('seeded randomness', () => {
  test('the same seed gives the same sequence; another seed another', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const seqA = Array.from({ length: 100 }, () => a.uint32());
    assert.deepEqual(
      Array.from({ length: 100 }, () => b.uint32()),
      seqA,
    );
    assert.notDeepEqual(
      Array.from({ length: 100 }, () => c.uint32()),
      seqA,
    );
  });

  test('uuids are well-formed v4 and distinct', () => {
    const rng = new Rng('u');
    const ids = Array.from({ length: 2000 }, () => rng.uuid());
    for (const id of ids) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(new Set(ids).size, ids.length);
  });

  test('same seed, catalogue and now → identical events; another seed → different events', () => {
    const first = batch(7, 3000);
    assert.equal(first.length, 3000);
    assert.deepEqual(batch(7, 3000), first);
    assert.notDeepEqual(batch(8, 3000), first);
  });

  test('a slice gives the same rows whatever order slices are generated in', () => {
    const slices = batchSlices(NOW, 10 * MINUTE_MS, 6000, 2000);
    const forward = new EventEngine({ catalogue, seed: 'o' });
    const backward = new EventEngine({ catalogue, seed: 'o' });
    const f = slices.map((s, i) => forward.fillSlice(s, i, NOW));
    const b = slices
      .map((s, i) => ({ i, s }))
      .reverse()
      .map(({ s, i }) => backward.fillSlice(s, i, NOW))
      .reverse();
    assert.deepEqual(b, f);
  });
});

describe('sessions', () => {
  const events = batch('shape', 20_000);
  const bySession = sessions(events);

  test('every event is well-formed and in the window', () => {
    for (const e of events) {
      assert.ok(['play', 'pause', 'finish', 'click'].includes(e.event_type));
      assert.ok(
        e.event_ts >= NOW - 10 * MINUTE_MS && e.event_ts <= NOW,
        `ts in window: ${new Date(e.event_ts).toISOString()}`,
      );
      assert.ok(byId.has(e.content_id));
      assert.match(e.user_id, /^[0-9a-f-]{36}$/);
      assert.ok(e.raw_payload.session_id && e.raw_payload.app_version);
      if (e.event_type === 'click') assert.equal(e.duration_ms, null);
      else assert.ok(Number.isInteger(e.duration_ms) && (e.duration_ms as number) >= 0);
    }
  });

  test('play → (pause → play)* → finish, in time order, durations adding up to at most the length', () => {
    let finished = 0;
    let abandoned = 0;
    for (const [id, list] of bySession) {
      const item = byId.get(list[0]?.content_id ?? '') as CatalogueItem;
      const lengthMs = modelLengthMs(item);
      list.forEach((e, i) => {
        assert.equal(e.raw_payload.seq, (list[0]?.raw_payload.seq ?? 0) + i, `${id}: consecutive seq`);
        if (i > 0) assert.ok(e.event_ts >= (list[i - 1] as GeneratedEvent).event_ts, `${id}: time order`);
        assert.equal(e.content_id, item.id);
        assert.equal(e.user_id, list[0]?.user_id);
        assert.equal(e.device, list[0]?.device);
      });
      const types = list.map((e) => e.event_type);
      // A session cut by the slice quota may lack its tail, never its head.
      if (list[0]?.raw_payload.seq !== 0) continue;
      assert.match(types.join(' '), /^(click ?)?(play pause ?)*(play( finish| pause)?)?$/, `${id}: ${types.join(' ')}`);
      const playing = types.filter((t) => t !== 'click');
      assert.ok(playing.length === 0 || playing[0] === 'play', `${id}: starts with play`);
      const total = list.reduce((n, e) => n + (e.duration_ms ?? 0), 0);
      assert.ok(total <= lengthMs, `${id}: listened ${total} ms of ${lengthMs}`);
      for (const e of list) assert.ok((e.duration_ms ?? 0) <= lengthMs);
      const last = list[list.length - 1] as GeneratedEvent;
      if (last.event_type === 'finish') {
        finished++;
        assert.equal(last.raw_payload.position_ms, lengthMs, `${id}: finish at the end`);
      } else if (types.includes('play')) abandoned++;
    }
    assert.ok(finished > 100 && abandoned > 100, `both finished (${finished}) and abandoned (${abandoned}) sessions`);
  });

  test('users come back; devices and content types are mixed', () => {
    const users = new Set(events.map((e) => e.user_id));
    assert.ok(users.size < bySession.size / 1.5, `${users.size} users for ${bySession.size} sessions`);
    const devices = new Set(events.map((e) => e.device));
    assert.ok(devices.size >= 5, [...devices].join(','));
    const clicks = (type: string) => {
      const of = events.filter((e) => byId.get(e.content_id)?.content_type === type);
      return of.filter((e) => e.event_type === 'click').length / of.length;
    };
    assert.ok(clicks('newsletter') > 2 * clicks('podcast'), 'newsletters are mostly clicked');
  });

  test('popularity is Zipf-like: the top 10% of content gets far more events than the bottom half', () => {
    const counts = new Map<string, number>();
    for (const e of events) counts.set(e.content_id, (counts.get(e.content_id) ?? 0) + 1);
    const sorted = catalogue.map((c) => counts.get(c.id) ?? 0).sort((a, b) => b - a);
    const top = sorted.slice(0, Math.ceil(sorted.length / 10)).reduce((a, b) => a + b, 0);
    const bottom = sorted.slice(Math.floor(sorted.length / 2)).reduce((a, b) => a + b, 0);
    assert.ok(top > 3 * bottom, `top 10% ${top} vs bottom half ${bottom}`);
  });

  test('no engagement before a content item is published', () => {
    const fresh = catalogue.map((c, i) => (i === 0 ? { ...c, publish_ms: NOW + DAY_MS } : c));
    const popularity = new ContentPopularity(fresh, 'p');
    const rng = new Rng('p');
    for (let i = 0; i < 5000; i++) assert.notEqual(popularity.pick(rng, NOW).id, fresh[0]?.id);
  });
});

describe('timeline', () => {
  test('allocate splits exactly', () => {
    assert.deepEqual(allocate(10, [1, 1, 1]), [4, 3, 3]);
    assert.equal(
      allocate(1_000_003, [0.3, 1.4, 0.9, 2]).reduce((a, b) => a + b, 0),
      1_000_003,
    );
  });

  test('batch slices cover the window with the exact total', () => {
    const slices = batchSlices(NOW, 5 * MINUTE_MS, 12_345, 2000);
    assert.equal(
      slices.reduce((n, s) => n + s.quota, 0),
      12_345,
    );
    assert.ok(slices.every((s) => s.quota <= 2000 && s.startMs >= NOW - 5 * MINUTE_MS && s.endMs <= NOW));
  });

  test('historical slices: exact per day, with a daily rhythm', () => {
    const slices = historicalSlices(NOW, 3, 5000, 2000);
    for (let d = 0; d < 3; d++) {
      const from = NOW - (3 - d) * DAY_MS;
      const day = slices.filter((s) => s.startMs >= from && s.startMs < from + DAY_MS);
      assert.equal(
        day.reduce((n, s) => n + s.quota, 0),
        5000,
        `day ${d}`,
      );
    }
    const at = (hour: number) =>
      slices.filter((s) => new Date(s.startMs).getUTCHours() === hour).reduce((n, s) => n + s.quota, 0);
    assert.ok(at(20) > 5 * at(3), `20h ${at(20)} vs 03h ${at(3)}`);
    assert.ok(slices.every((s) => s.endMs - s.startMs <= HOUR_MS && s.quota <= 2000));
  });

  test('fitBefore squeezes a session that would end in the future, keeping its order', () => {
    const engine = new EventEngine({ catalogue, seed: 'fit' });
    const long = engine.session(NOW - 60_000, Number.POSITIVE_INFINITY);
    const copy = long.map((e) => ({ ...e }));
    fitBefore(copy, NOW);
    assert.ok(copy.every((e) => e.event_ts <= NOW && e.event_ts >= NOW - 60_000));
    for (let i = 1; i < copy.length; i++)
      assert.ok((copy[i] as GeneratedEvent).event_ts >= (copy[i - 1] as GeneratedEvent).event_ts);
  });

  test('Zipf probabilities decrease with rank', () => {
    const z = new ZipfSampler(50, 1.1);
    for (let k = 1; k < 50; k++) assert.ok(z.probability(k) < z.probability(k - 1));
  });
});

describe('live sessions (continuous mode)', () => {
  test('sessions interleave but each keeps its order', () => {
    const live = new EventEngine({ catalogue, seed: 'live' }).live(20);
    const out = Array.from({ length: 3000 }, (_, i) => live.next(NOW + i * 100));
    const bySession = sessions(out);
    assert.ok(bySession.size > 20);
    for (const [id, list] of bySession) {
      list.forEach((e, i) => assert.equal(e.raw_payload.seq, i, `${id}: in order`));
    }
  });
});
