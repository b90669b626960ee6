import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger } from '../../src/core/logger.js';
import { AssignmentWatch, type GroupView } from '../../src/kafka/assignment-watch.js';

/** The assignment watch against a scripted group view and clock: when a member counts as starved. */

const log = createLogger('silent', 'test-assignment-watch');

interface World {
  t: number;
  view: Omit<GroupView, 'at'> | null;
  /** When the view was last refreshed (statistics arrive every few seconds). */
  viewAt: number;
  rebalanceWaitMs: number;
  starved: string[];
}

function setup(boundMs = 60_000): { world: World; watch: AssignmentWatch; at(t: number): void } {
  const world: World = { t: 0, view: null, viewAt: 0, rebalanceWaitMs: 0, starved: [] };
  const watch = new AssignmentWatch({
    groupId: 'g',
    topic: 't',
    group: () => (world.view === null ? null : { ...world.view, at: world.viewAt }),
    rebalanceWaitMs: () => world.rebalanceWaitMs,
    boundMs,
    log,
    onStarved: (reason) => world.starved.push(reason),
    now: () => world.t,
  });
  /** Moves the clock to `t` with fresh statistics, and checks. */
  const at = (t: number) => {
    world.t = t;
    world.viewAt = t;
    watch.check();
  };
  return { world, watch, at };
}

test('a steady member is fine, with partitions or without (a spare member of a larger group)', () => {
  const { world, watch, at } = setup();
  world.view = { state: 'up', joinState: 'steady', assignmentSize: 3 };
  for (let t = 0; t <= 300_000; t += 5_000) at(t);
  world.view = { state: 'up', joinState: 'steady', assignmentSize: 0 };
  for (let t = 300_000; t <= 600_000; t += 5_000) at(t);
  assert.deepEqual(world.starved, []);
  assert.equal(watch.status().ok, true);
});

test('not steady with the coordinator up: unhealthy at half the bound, starved once at the bound', () => {
  const { world, watch, at } = setup(60_000);
  world.view = { state: 'up', joinState: 'init', assignmentSize: 0 };
  at(0);
  assert.equal(watch.status().ok, true, 'not at once');
  at(30_000);
  assert.equal(watch.status().ok, false, 'unhealthy from half the bound');
  assert.match(watch.status().reason ?? '', /membership of group g is "init", not steady/);
  assert.deepEqual(world.starved, []);
  at(60_000);
  assert.equal(world.starved.length, 1);
  assert.match(world.starved[0] ?? '', /for 60 s/);
  at(120_000);
  assert.equal(world.starved.length, 1, 'reported once');
});

test('the coordinator away (the broker down or frozen) or stale statistics reset the clock: an outage is waited out', () => {
  const { world, watch, at } = setup(60_000);
  world.view = { state: 'up', joinState: 'wait-join', assignmentSize: 0 };
  at(0);
  world.view = { state: 'wait-coord', joinState: 'init', assignmentSize: 0 };
  for (let t = 5_000; t <= 120_000; t += 5_000) at(t);
  assert.equal(watch.status().ok, true, 'an unreachable coordinator is not starvation');
  world.view = { state: 'up', joinState: 'init', assignmentSize: 0 };
  at(125_000);
  // Statistics stop arriving (the client stuck below JavaScript): no evidence either way.
  world.t = 170_000;
  watch.check();
  assert.equal(watch.status().starving_since, null, 'stale statistics clear the clock');
  at(175_000);
  at(230_000);
  assert.deepEqual(world.starved, [], 'never 60 s of starvation seen without a break');
  at(235_000);
  assert.equal(world.starved.length, 1, '60 s seen from 175 s on');
});

test('a rebalance event left unapplied with the coordinator up is starvation; while the coordinator is away it is waited out', () => {
  const { world, at } = setup(60_000);
  world.view = { state: 'wait-coord', joinState: 'wait-unassign-call', assignmentSize: 3 };
  world.rebalanceWaitMs = 1;
  for (let t = 0; t <= 120_000; t += 5_000) at(t);
  assert.deepEqual(world.starved, [], 'a revoke waiting for a transaction during an outage');
  world.view = { state: 'up', joinState: 'wait-unassign-call', assignmentSize: 3 };
  at(125_000);
  at(180_000);
  assert.deepEqual(world.starved, []);
  at(185_000);
  assert.equal(world.starved.length, 1);
  assert.match(world.starved[0] ?? '', /rebalance event has waited/);
});
