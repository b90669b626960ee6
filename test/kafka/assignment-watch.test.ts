import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger } from '../../src/core/logger.js';
import { AssignmentWatch, type AssignmentWatchOptions } from '../../src/kafka/assignment-watch.js';

/** The assignment watch against a scripted admin and clock: when a member counts as starved. */

const log = createLogger('silent', 'test-assignment-watch');
const STABLE = 3;
const PREPARING_REBALANCE = 1;

interface World {
  t: number;
  held: number[];
  rebalanceWaitMs: number;
  state: number;
  /** Partitions held by the group's members (this one included). */
  membersHold: number[];
  high: number[];
  committed: number[];
  adminDown: boolean;
  starved: string[];
}

function setup(boundMs = 60_000): { world: World; watch: AssignmentWatch } {
  const world: World = { t: 0, held: [], rebalanceWaitMs: 0, state: STABLE, membersHold: [], high: [10, 10, 10], committed: [10, 10, 10], adminDown: false, starved: [] };
  const down = () => {
    if (world.adminDown) throw new Error('all broker connections are down');
  };
  const admin = {
    describeGroups: async () => {
      down();
      return { groups: [{ groupId: 'g', state: world.state, members: [{ assignment: { topicPartitions: world.membersHold.map((partition) => ({ topic: 't', partition })) } }] }] };
    },
    fetchTopicOffsets: async () => {
      down();
      return world.high.map((h, partition) => ({ partition, offset: String(h), high: String(h), low: '0' }));
    },
    fetchOffsets: async () => {
      down();
      return [{ topic: 't', partitions: world.committed.map((o, partition) => ({ partition, offset: String(o), metadata: null })) }];
    },
  } as unknown as AssignmentWatchOptions['admin'];
  const watch = new AssignmentWatch({
    admin,
    groupId: 'g',
    topic: 't',
    held: () => world.held,
    rebalanceWaitMs: () => world.rebalanceWaitMs,
    boundMs,
    log,
    onStarved: (reason) => world.starved.push(reason),
    now: () => world.t,
  });
  return { world, watch };
}

test('a member holding partitions is fine whatever the group looks like', async () => {
  const { world, watch } = setup();
  world.held = [0];
  world.high = [10, 99, 99];
  for (world.t = 0; world.t <= 300_000; world.t += 10_000) await watch.check();
  assert.deepEqual(world.starved, []);
  assert.equal(watch.status().ok, true);
});

test('a spare member (every partition held by another) or a group without lag is not starved', async () => {
  const { world, watch } = setup();
  world.membersHold = [0, 1, 2];
  world.high = [20, 20, 20];
  for (world.t = 0; world.t <= 300_000; world.t += 10_000) await watch.check();
  world.membersHold = [];
  world.high = [10, 10, 10];
  for (; world.t <= 600_000; world.t += 10_000) await watch.check();
  assert.deepEqual(world.starved, []);
});

test('holding nothing while a partition with lag has no member: unhealthy at half the bound, starved once at the bound', async () => {
  const { world, watch } = setup(60_000);
  world.membersHold = [0];
  world.high = [10, 15, 10];
  await watch.check();
  assert.equal(watch.status().ok, true, 'not at once');
  world.t = 30_000;
  await watch.check();
  assert.equal(watch.status().ok, false, 'unhealthy from half the bound');
  assert.match(watch.status().reason ?? '', /partitions 1 of t have lag/);
  assert.deepEqual(world.starved, []);
  world.t = 60_000;
  await watch.check();
  assert.equal(world.starved.length, 1);
  assert.match(world.starved[0] ?? '', /for 60 s/);
  world.t = 120_000;
  await watch.check();
  assert.equal(world.starved.length, 1, 'reported once');
});

test('an outage (admin calls failing) or a rebalance in progress resets the clock: an outage is waited out', async () => {
  const { world, watch } = setup(60_000);
  world.high = [10, 15, 10];
  await watch.check();
  world.t = 50_000;
  world.adminDown = true;
  await watch.check();
  assert.equal(watch.status().ok, true, 'unknown is not starving');
  world.adminDown = false;
  world.t = 70_000;
  await watch.check();
  world.t = 100_000;
  world.state = PREPARING_REBALANCE;
  await watch.check();
  world.state = STABLE;
  world.t = 110_000;
  await watch.check();
  world.t = 160_000;
  await watch.check();
  assert.deepEqual(world.starved, [], 'never 60 s of starvation seen without a break');
  world.t = 170_000;
  await watch.check();
  assert.equal(world.starved.length, 1, '60 s seen from 110 s on');
});

test('a rebalance event left unapplied past the bound is starvation, whatever the partitions', async () => {
  const { world, watch } = setup(60_000);
  world.held = [0, 1, 2];
  world.rebalanceWaitMs = 59_000;
  await watch.check();
  assert.deepEqual(world.starved, []);
  world.rebalanceWaitMs = 61_000;
  await watch.check();
  assert.equal(world.starved.length, 1);
  assert.match(world.starved[0] ?? '', /rebalance event has waited 61 s/);
});
