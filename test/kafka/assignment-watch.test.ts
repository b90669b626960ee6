import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger } from '../../src/core/logger.js';
import { AssignmentWatch, groupViewOf, type GroupView } from '../../src/kafka/assignment-watch.js';

/** The assignment watch against a scripted member, broker and clock: when a member counts as starved. */

const log = createLogger('silent', 'test-assignment-watch');

interface World {
  t: number;
  held: number[];
  view: Omit<GroupView, 'at'> | null;
  /** When the view was last refreshed (statistics arrive every few seconds). */
  viewAt: number;
  rebalanceWaitMs: number;
  reachable: boolean;
  /** What the group's description says has no member (null: unknown). */
  unheld: number[] | null;
  describes: number;
  starved: string[];
}

function setup(boundMs = 60_000) {
  const world: World = {
    t: 0,
    held: [],
    view: null,
    viewAt: 0,
    rebalanceWaitMs: 0,
    reachable: true,
    unheld: [],
    describes: 0,
    starved: [],
  };
  const watch = new AssignmentWatch({
    groupId: 'g',
    topic: 't',
    held: () => world.held,
    group: () => (world.view === null ? null : { ...world.view, at: world.viewAt }),
    rebalanceWaitMs: () => world.rebalanceWaitMs,
    brokerReachable: async () => world.reachable,
    unheldPartitions: async () => {
      world.describes++;
      return world.unheld;
    },
    boundMs,
    log,
    onStarved: (reason) => world.starved.push(reason),
    now: () => world.t,
  });
  /** Moves the clock to `t` with fresh statistics, and checks. */
  const at = async (t: number) => {
    world.t = t;
    world.viewAt = t;
    await watch.check();
  };
  return { world, watch, at };
}

test('a member holding partitions is fine, and asks the broker nothing', async () => {
  const { world, watch, at } = setup();
  world.held = [0, 1];
  world.view = { state: 'up', joinState: 'steady', assignmentSize: 2 };
  for (let t = 0; t <= 300_000; t += 5_000) await at(t);
  assert.deepEqual(world.starved, []);
  assert.equal(watch.status().ok, true);
  assert.equal(world.describes, 0);
});

test('a spare member (settled with nothing, every partition held by another) is fine', async () => {
  const { world, at } = setup();
  world.view = { state: 'up', joinState: 'steady', assignmentSize: 0 };
  world.unheld = [];
  for (let t = 0; t <= 300_000; t += 5_000) await at(t);
  assert.deepEqual(world.starved, []);
  assert.ok(world.describes > 0, 'the group was asked');
});

test('settled with nothing while partitions have no member: unhealthy at half the bound, starved once at the bound', async () => {
  const { world, watch, at } = setup(60_000);
  world.view = { state: 'up', joinState: 'steady', assignmentSize: 0 };
  world.unheld = [1, 2];
  await at(0);
  assert.equal(watch.status().ok, true, 'not at once');
  await at(30_000);
  assert.equal(watch.status().ok, false, 'unhealthy from half the bound');
  assert.match(watch.status().reason ?? '', /partitions 1, 2 of t have no member/);
  await at(60_000);
  assert.equal(world.starved.length, 1);
  assert.match(world.starved[0] ?? '', /for 60 s/);
  await at(120_000);
  assert.equal(world.starved.length, 1, 'reported once');
});

test('holding nothing and not settling while the broker accepts connections is starvation, whatever librdkafka reports (a freeze, a lost assignment never rejoined)', async () => {
  for (const view of [
    { state: 'up', joinState: 'init', assignmentSize: 0 },
    { state: 'wait-coord', joinState: 'init', assignmentSize: 0 },
    null,
  ]) {
    const { world, at } = setup(60_000);
    world.view = view;
    await at(0);
    await at(59_000);
    assert.deepEqual(world.starved, [], `not before the bound (${JSON.stringify(view)})`);
    await at(60_000);
    assert.equal(world.starved.length, 1, `starved (${JSON.stringify(view)})`);
    assert.match(world.starved[0] ?? '', /does not settle/);
  }
});

test('the broker refusing connections (down) resets the clock: an outage is waited out', async () => {
  const { world, watch, at } = setup(60_000);
  world.view = { state: 'wait-coord', joinState: 'init', assignmentSize: 0 };
  world.reachable = false;
  for (let t = 0; t <= 300_000; t += 5_000) await at(t);
  assert.equal(watch.status().ok, true);
  world.reachable = true;
  await at(305_000);
  await at(364_000);
  assert.deepEqual(world.starved, [], "60 s counted from the broker's return");
  await at(365_000);
  assert.equal(world.starved.length, 1);
});

test('a rebalance event left unapplied while the broker is there is starvation, even with partitions held', async () => {
  const { world, at } = setup(60_000);
  world.held = [0, 1, 2];
  world.view = { state: 'up', joinState: 'wait-unassign-call', assignmentSize: 3 };
  world.rebalanceWaitMs = 1;
  world.reachable = false;
  for (let t = 0; t <= 120_000; t += 5_000) await at(t);
  assert.deepEqual(world.starved, [], 'a revoke waiting for a transaction during an outage');
  world.reachable = true;
  await at(125_000);
  await at(184_000);
  assert.deepEqual(world.starved, []);
  await at(185_000);
  assert.equal(world.starved.length, 1);
  assert.match(world.starved[0] ?? '', /rebalance event has waited/);
});

test("groupViewOf reads librdkafka's cgrp statistics, and nothing from anything else", () => {
  const json = JSON.stringify({ cgrp: { state: 'up', join_state: 'steady', assignment_size: 3 } });
  assert.deepEqual(groupViewOf(json, 7), { state: 'up', joinState: 'steady', assignmentSize: 3, at: 7 });
  assert.equal(groupViewOf('{"name":"producer"}', 7), null);
  assert.equal(groupViewOf('not json', 7), null);
});
