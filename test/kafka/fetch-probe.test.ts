import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FetchProbe, type FetchView } from '../../src/kafka/fetch-probe.js';
import { FetchBuffers } from '../../src/kafka/fetch-buffers.js';
import { pino } from 'pino';

/**
 * The fetch-stall probe (src/kafka/fetch-probe.ts) against a fake librdkafka consumer: when it asks
 * the broker, which position it judges, and that no answer is no finding.
 */

const TOPIC = 't';
const log = pino({ level: 'silent' });

interface Fake {
  positions: Map<number, number | undefined>;
  committed: Map<number, number>;
  ends: Map<number, number>;
  fail: boolean;
  asked: { ends: number; committed: number };
}

function fakeConsumer(f: Fake) {
  type Tp = { topic: string; partition: number };
  type Cb = (err: Error | null, offsets: Array<Tp & { offset: number }>) => void;
  const answer = (tps: Tp[], from: Map<number, number>, cb: Cb) =>
    setImmediate(() =>
      f.fail
        ? cb(new Error('Local: Timed out'), [])
        : cb(
            null,
            tps.map((tp) => ({ ...tp, offset: from.get(tp.partition) ?? -1001 })),
          ),
    );
  return {
    position: (tps: Tp[]) => tps.map((tp) => ({ ...tp, offset: f.positions.get(tp.partition) as number })),
    committed: (tps: Tp[], _timeout: number, cb: Cb) => {
      f.asked.committed++;
      answer(tps, f.committed, cb);
    },
    offsetsForTimes: (tps: Tp[], _timeout: number, cb: Cb) => {
      f.asked.ends++;
      answer(tps, f.ends, cb);
    },
  };
}

function setup(positions: Array<[number, number | undefined]>, ends: Array<[number, number]>) {
  const f: Fake = {
    positions: new Map(positions),
    committed: new Map(),
    ends: new Map(ends),
    fail: false,
    asked: { ends: 0, committed: 0 },
  };
  let t = 0;
  const probe = new FetchProbe(
    fakeConsumer(f) as unknown as ConstructorParameters<typeof FetchProbe>[0],
    TOPIC,
    log,
    () => t,
    60_000,
  );
  return { f, probe, at: (ms: number) => (t = ms) };
}

const view = (partition: number, o: Partial<FetchView> = {}): FetchView => ({
  partition,
  busy: false,
  fetchedAt: 0,
  from: null,
  ...o,
});

test('asks the broker only once a partition not busy has fetched nothing for 15 s, at most every 15 s', async () => {
  const { f, probe, at } = setup([[0, 10]], [[0, 20]]);
  at(14_999);
  assert.deepEqual(await probe.check([view(0)]), []);
  assert.deepEqual(await probe.check([view(0, { busy: true, fetchedAt: -60_000 })]), []);
  assert.equal(f.asked.ends, 0, 'fetching lately, or busy: no request');
  at(15_000);
  await probe.check([view(0)]);
  assert.equal(f.asked.ends, 1);
  at(29_999);
  await probe.check([view(0)]);
  assert.equal(f.asked.ends, 1, 'not again within 15 s');
  for (const ms of [30_000, 45_000, 60_000]) {
    at(ms);
    assert.deepEqual(await probe.check([view(0)]), []);
  }
  at(75_000);
  assert.deepEqual(await probe.check([view(0)]), [
    { partition: 0, position: 10, stableEnd: 20, stalledMs: 60_000, idleMs: 75_000 },
  ]);
  assert.equal(f.asked.ends, 5);
  assert.equal(f.asked.committed, 0, "librdkafka's position known: the committed offset is not asked");
});

test('a partition fetching again is cleared without a request', async () => {
  const { f, probe, at } = setup([[0, 10]], [[0, 20]]);
  at(15_000);
  await probe.check([view(0)]);
  at(70_000);
  assert.deepEqual(await probe.check([view(0, { fetchedAt: 69_000 })]), []);
  at(80_000);
  assert.deepEqual(await probe.check([view(0)]), [], 'its clock started again');
  assert.equal(f.asked.ends, 2);
});

test('without a librdkafka position, where it was placed, else the committed offset, is judged', async () => {
  const { f, probe, at } = setup(
    [
      [0, undefined],
      [1, -1001],
    ],
    [
      [0, 20],
      [1, 20],
    ],
  );
  f.committed.set(1, 19);
  const views = [view(0, { from: 10 }), view(1)];
  for (const ms of [15_000, 30_000, 45_000, 60_000]) {
    at(ms);
    assert.deepEqual(await probe.check(views), []);
  }
  at(75_000);
  assert.deepEqual(
    (await probe.check(views)).map((s) => [s.partition, s.position]),
    [[0, 10]],
    'partition 1: committed 19, stable end 20 (its trailing marker): caught up',
  );
  assert.equal(f.asked.committed, 5, 'asked for partition 1 only, at each request');
});

test('no answer from the broker is no finding, and keeps the clocks', async () => {
  const { f, probe, at } = setup([[0, 10]], [[0, 20]]);
  at(15_000);
  await probe.check([view(0)]);
  f.fail = true;
  for (const ms of [30_000, 45_000, 60_000]) {
    at(ms);
    assert.deepEqual(await probe.check([view(0)]), []);
  }
  f.fail = false;
  at(75_000);
  assert.deepEqual(
    (await probe.check([view(0)])).map((s) => s.stalledMs),
    [60_000],
  );
});

test("the fetch buffers' views: busy while holding, running, paused, rewinding; placed where assigned or rewound", () => {
  const b = new FetchBuffers(TOPIC, 10, { pause: () => undefined, resume: () => undefined });
  b.open(0, 100, 50);
  b.open(1, 100);
  b.open(2, 100);
  b.hold(2, true);
  const msg = (partition: number, offset: number) =>
    ({ topic: TOPIC, partition, offset, value: null, size: 0 }) as unknown as Parameters<FetchBuffers['add']>[0];
  b.add(msg(1, 7), 200);
  assert.deepEqual(b.fetchViews(), [
    { partition: 0, busy: false, fetchedAt: 100, from: 50 },
    { partition: 1, busy: true, fetchedAt: 200, from: null },
    { partition: 2, busy: true, fetchedAt: 100, from: null },
  ]);
  b.reposition(0, 40);
  assert.equal(b.fetchViews()[0]?.busy, true, 'waiting for its seek');
  const [rewinding] = b.rewinding();
  if (rewinding) b.rewound(rewinding);
  assert.deepEqual(b.fetchViews()[0], { partition: 0, busy: false, fetchedAt: 100, from: 40 });
});
