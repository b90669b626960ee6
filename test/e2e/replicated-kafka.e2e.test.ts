import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { TXN_OP_TIMEOUT_MS } from '../../src/kafka/txn-producer.js';
import { SINK_SESSION_TIMEOUT_MS } from '../../src/runtime/sink-runner.js';
import { KAFKA_TIMEOUTS } from '../../src/stack/kafka-nodes.js';
import { ExpectedEvents } from '../faults/expected-events.js';
import { waitAndProve, type SinkProof } from '../faults/sink-proof.js';
import { waitFor } from '../helpers/wait.js';
import {
  StallMeter,
  busiestLeader,
  killNode,
  nodes,
  partitions,
  redisWindowCounter,
  restartNodes,
  waitFullyReplicated,
} from './kafka-cluster.js';
import { PROOF_ENV, logTails, startPipelineRun, type PipelineRun } from './pipeline-run.js';
import { scaleStage, stopExtraInstances } from './scale-stage.js';

/**
 * The pipeline on a replicated Kafka (issue 30): a private three-node KRaft cluster
 * (STACK_KAFKA_BROKERS=3; topics replication factor 3, min.insync.replicas 2, every producer
 * acks=all), every component running as `engage run` runs them, the generator loading it at RATE
 * events/s throughout.
 *
 * 1. Broker loss: SIGKILL of the node leading the most partitions, mid-stream; once it is back
 *    and every replica in sync, SIGKILL of the node then leading the most among the other two;
 *    back again. Every sink then holds every event exactly once (the fault matrix's proof), and
 *    the longest stall of progress at the far end of the pipeline (the receiver's distinct events,
 *    the Redis window's count) stays within the bound derived below (stallBoundMs) from the
 *    cluster's failure-detection timeouts and the clients' own.
 * 2. Scaling: the processor, then the Redis sink, from 1 instance to 3 and back to 1 under the
 *    same load (what KEDA does): each step waits until the group's members hold every partition;
 *    then the same proof.
 */

const RATE = Number(process.env.REPLICATED_RATE ?? '150');
const PROOF_DEADLINE_MS = 240_000;

/**
 * The longest a stall may last, from the timeouts that govern each step of the recovery.
 * - The leader election, ELECTION_MS: a SIGKILLed node stops heartbeating; the active controller
 *   fences it BROKER_SESSION_MS after its last heartbeat, which moves its partitions' leadership,
 *   drops it from every ISR (until then acks=all writes to partitions it follows wait too) and
 *   moves the group and transaction coordinators it hosted. When it was the active controller,
 *   the others first elect a new one: QUORUM_FETCH_MS without an answer, then an election of up to
 *   twice QUORUM_ELECTION_MS (timeout and backoff); the new controller's session clock starts then.
 * - A transactional call caught by the election (the CDC's commit, the processor's offsets) waits
 *   on the brokers up to TXN_OP_TIMEOUT_MS before it fails and the stage reopens its producer.
 * - A consumer whose coordinator moved more slowly than its session timeout has lost its
 *   membership and joins again; the rebalance waits at most one session timeout (the sinks' or
 *   the processor's, the longer) for members that are gone.
 * The steps overlap in practice; the bound is their sum.
 */
const ELECTION_MS =
  KAFKA_TIMEOUTS.QUORUM_FETCH_MS + 2 * KAFKA_TIMEOUTS.QUORUM_ELECTION_MS + KAFKA_TIMEOUTS.BROKER_SESSION_MS;
const stallBoundMs = (run: PipelineRun) =>
  ELECTION_MS + TXN_OP_TIMEOUT_MS + Math.max(SINK_SESSION_TIMEOUT_MS, run.config.PROCESSOR_SESSION_TIMEOUT_MS);

const log = (line: string) => console.log(line);
let run: PipelineRun;
const expected = new ExpectedEvents();
/** Tests that ran to their end: the run's logs are removed only when both did. */
let passed = 0;

before(async () => {
  run = await startPipelineRun({
    label: 'replicated',
    // The other proofs take 300–490; the nodes 2 and 3 listen 2,000 below the Kafka port.
    offsets: { from: 800, to: 890, step: 10 },
    env: {
      ...PROOF_ENV,
      // The product's default (the other proofs shorten it to move a killed processor's partitions sooner).
      PROCESSOR_SESSION_TIMEOUT_MS: '15000',
      STACK_KAFKA_BROKERS: '3',
      STACK_KAFKA_HEAP: '512m',
      REDIS_AGGREGATION_WINDOW_MINUTES: '240',
    },
    generatorRate: RATE,
    log,
  });
  run.sup.start();
});

after(async () => {
  // A stack that did not come up was removed by startPipelineRun itself.
  if (run === undefined) return;
  await stopExtraInstances(run);
  const proven = passed === 2;
  if (!proven) {
    log(logTails(run.logsDir, 20));
    // The brokers' own logs go with the stack: kept beside the components' for a look.
    for (const n of nodes(run)) copyFileSync(n.log, path.join(run.logsDir, `kafka-node-${n.id}.log`));
  }
  await run.close(proven);
});

/** Waits until the receiver takes `n` events it had not seen: the whole pipeline moves. */
async function flowing(what: string, n = 50, timeoutMs = 180_000): Promise<void> {
  const start = run.receiver.stats().events_unique;
  await waitFor(
    `${n} new events at the receiver after ${what}`,
    () => run.receiver.stats().events_unique >= start + n,
    {
      timeoutMs,
      everyMs: 250,
    },
  );
}

/** Stops the load, waits for every sink and proves it: nothing lost, duplicated, unknown or parked. */
async function prove(): Promise<SinkProof> {
  const generator = run.sup.child('generator');
  await generator?.stop();
  try {
    await expected.snapshot(run.config);
    const proof = await waitAndProve({
      config: run.config,
      sup: run.sup,
      receiver: run.receiver,
      expected,
      log,
      deadlineMs: PROOF_DEADLINE_MS,
    });
    log(
      `replicated: ${proof.expected} events; lost/duplicated Redis ${proof.redis.lost}/${proof.redis.duplicated}, warehouse ${proof.warehouse.lost}/${proof.warehouse.duplicated} (${proof.warehouse.rows} rows), external ${proof.external.lost}/${proof.external.duplicated} (${proof.external.resent} re-sent, absorbed); DLQ ${proof.dlq.entries}; caught up in ${proof.caughtUpSeconds.toFixed(0)} s`,
    );
    return proof;
  } finally {
    generator?.start();
  }
}

function assertExact(proof: SinkProof): void {
  const counts = (c: { lost: number; duplicated: number; unknown: number }) => [c.lost, c.duplicated, c.unknown];
  assert.ok(proof.expected > 0, 'events were written');
  assert.deepEqual(counts(proof.redis), [0, 0, 0], 'Redis: lost, duplicated, unknown');
  assert.deepEqual(counts(proof.warehouse), [0, 0, 0], 'warehouse: lost, duplicated, unknown');
  assert.deepEqual(counts(proof.external), [0, 0, 0], 'external: lost, duplicated, unknown');
  assert.equal(proof.dlq.entries, 0, `nothing parked: ${proof.dlq.unexpected.slice(0, 3).join('; ')}`);
}

test(
  "a three-broker cluster loses the busiest leader, then a second broker: every sink exactly once, no stall beyond the election and the clients' recovery timeouts",
  { timeout: 30 * 60_000 },
  async () => {
    const replication = await partitions(run.config);
    const topics = replication.filter((p) => !p.topic.startsWith('__'));
    assert.ok(topics.length > 0 && topics.every((p) => p.replicas.length === 3), 'pipeline topics have 3 replicas');
    assert.equal(nodes(run).length, 3);
    await flowing('the start');
    const redis = await redisWindowCounter(run.config);
    const meters = [
      new StallMeter('receiver', async () => run.receiver.stats().events_unique),
      new StallMeter('Redis window', redis.count),
    ];
    const bound = stallBoundMs(run);
    for (const m of meters) m.start();
    const t0 = Date.now();
    const kills: string[] = [];
    try {
      let spared: number[] = [1, 2, 3];
      for (const round of [1, 2]) {
        const view = await partitions(run.config);
        const victim = busiestLeader(view, spared);
        const at = (Date.now() - t0) / 1000;
        await killNode(run, victim.id);
        log(`replicated: t+${at.toFixed(1)} s SIGKILL node ${victim.id} (leads ${victim.leads} of ${view.length})`);
        kills.push(`node ${victim.id} at t+${at.toFixed(1)} s`);
        await flowing(`node ${victim.id} was killed`);
        const seconds = await restartNodes(run);
        await waitFullyReplicated(run.config, 180_000);
        log(`replicated: node ${victim.id} back in ${seconds.toFixed(1)} s, every replica in sync`);
        await flowing(`node ${victim.id} came back`);
        spared = spared.filter((id) => id !== victim.id);
        if (round === 1) assert.equal(spared.length, 2);
      }
    } finally {
      const stalls = await Promise.all(meters.map((m) => m.stop()));
      await redis.close();
      for (const [i, s] of stalls.entries())
        log(
          `replicated: longest stall at the ${meters[i]?.name}: ${(s.ms / 1000).toFixed(1)} s from t+${((s.from - t0) / 1000).toFixed(1)} s (bound ${bound / 1000} s; kills ${kills.join(', ')})`,
        );
      for (const [i, s] of stalls.entries())
        if (s.ms > bound) {
          assert.fail(`${meters[i]?.name}: progress stopped for ${s.ms} ms, more than ${bound} ms`);
        }
    }
    assertExact(await prove());
    passed++;
  },
);

test(
  'the processor and the Redis sink scaled from 1 to 3 instances and back under load: every sink exactly once',
  { timeout: 30 * 60_000 },
  async () => {
    await flowing('the last proof');
    const partitionsOf = Number(PROOF_ENV.KAFKA_TOPIC_PARTITIONS);
    for (const stage of ['processor', 'sink-redis'] as const) {
      for (const instances of [3, 1]) {
        const seconds = await scaleStage(run, stage, instances, partitionsOf);
        log(`replicated: ${stage} at ${instances} instance(s), every partition held, in ${seconds.toFixed(1)} s`);
        await flowing(`${stage} went to ${instances}`);
      }
    }
    assertExact(await prove());
    passed++;
  },
);
