import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { KAFKA_TIMEOUTS } from '../../src/stack/kafka-nodes.js';
import { ExpectedEvents } from '../faults/expected-events.js';
import { waitAndProve, type SinkProof } from '../faults/sink-proof.js';
import { waitFor } from '../helpers/wait.js';
import {
  StallMeter,
  busiestLeader,
  electionOver,
  killNode,
  longestWithin,
  nodes,
  openClusterView,
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
 * 1. Broker loss: SIGKILL of the node leading the most partitions, mid-stream (every sink
 *    consuming); once it is back and every replica in sync, SIGKILL of the node then leading the
 *    most among the other two; back again. Every sink then holds every event exactly once (the
 *    fault matrix's proof), and after each loss the longest stall of progress at the far end of the
 *    pipeline (the receiver's distinct events, the Redis window's count) stays within that loss's
 *    leader election, as measured, plus RESUME_MS (derived below).
 * 2. Scaling: the processor, then the Redis sink, from 1 instance to 3 and back to 1 under the
 *    same load (what KEDA does): each step waits until the group's members hold every partition;
 *    then the same proof.
 */

const RATE = Number(process.env.REPLICATED_RATE ?? '150');
/** REPLICATED_PORT_OFFSET: the one stack port offset to use (default: the first free of 800–890). */
const OFFSET = process.env.REPLICATED_PORT_OFFSET;
/** REPLICATED_KEEP_LOGS=1: the run's logs are kept even when it proved everything (to read its stalls). */
const KEEP_LOGS = process.env.REPLICATED_KEEP_LOGS === '1';
const PROOF_DEADLINE_MS = 240_000;

/**
 * The nominal leader election, ELECTION_MS: a SIGKILLed node stops heartbeating; the active
 * controller fences it BROKER_SESSION_MS after its last heartbeat, which moves its partitions'
 * leadership, drops it from every ISR (until then acks=all writes to partitions it follows wait too)
 * and moves the group and transaction coordinators it hosted. When it was the active controller,
 * the others first elect a new one: QUORUM_FETCH_MS without an answer, then an election of up to
 * twice QUORUM_ELECTION_MS (timeout and backoff); the new controller's session clock starts then.
 * On a loaded machine the cluster takes longer than that, so each kill's election is measured
 * (electionOver: from the kill until every partition is led elsewhere and the node is in no ISR).
 */
const ELECTION_MS =
  KAFKA_TIMEOUTS.QUORUM_FETCH_MS + 2 * KAFKA_TIMEOUTS.QUORUM_ELECTION_MS + KAFKA_TIMEOUTS.BROKER_SESSION_MS;
/**
 * How long after its election a broker's loss may still hold the pipeline's far end. No client
 * waits out a timeout of its own any more — the consumers' sessions (30 s) outlast the
 * coordinators' move, the processor's transactions (30 s) outlast the election, the CDC resumes a
 * timed-out commit, a sink retries reading its start offsets — so what is left is: the
 * coordinators loading their state on the new node ("Coordinator load in progress" for up to 2 s
 * after the election, measured); each client finding the new leaders and coordinators (metadata retried at most
 * 1 s apart, reconnects at most 1 s apart: FAILOVER_PROPS); and a record's way through the three
 * hops after that (the CDC's commit, the processor's transaction, the sink's batch, up to a second
 * each at this rate). Measured on 2026-12-07 on 2 shared cores (load average 26–70, two runs):
 * the far end moved again within a second of the election when the node lost led few partitions
 * (election 11.1–12.1 s, stall 11.6–12.0 s), and 1.4–6.0 s after it when it led most of them and
 * the coordinators (election 12.9–18.5 s, stall 18.8–20.0 s). 15 s is 2.5 times the most seen; a
 * slower machine lengthens the election, which the bound follows, more than what comes after it.
 * The processor's librdkafka may leave its send of the offsets unanswered when the group
 * coordinator is lost during it (librdkafka#5456: docs/processor.md); that is noticed 15 s after
 * the send began and costs a restart of the processor (about 2 s), within this bound; seen once
 * with a 45 s deadline (2026-12-07 20:48 UTC), when it was not.
 */
const RESUME_MS = 15_000;
/** How long before a kill the stall it causes may begin: the last progress before it, up to one
 *  batch of the far end (a sink's batch waits 0.1–1 s at this rate). */
const STALL_LEAD_MS = 3000;

const log = (line: string) => console.log(line);
let run: PipelineRun;
const expected = new ExpectedEvents();
/** Tests that ran to their end: the run's logs are removed only when both did. */
let passed = 0;

before(async () => {
  run = await startPipelineRun({
    label: 'replicated',
    // The other proofs take 300–490; the nodes 2 and 3 listen 2,000 below the Kafka port.
    offsets: OFFSET ? { from: Number(OFFSET), to: Number(OFFSET), step: 10 } : { from: 800, to: 890, step: 10 },
    env: {
      ...PROOF_ENV,
      // Unset: the product's default (the other proofs shorten it to move a killed processor's
      // partitions sooner; here it must outlast the coordinator's move).
      PROCESSOR_SESSION_TIMEOUT_MS: undefined,
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
  const proven = passed === 2 && !KEEP_LOGS;
  if (passed < 2) {
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
  'a three-broker cluster loses the busiest leader, then a second broker: every sink exactly once, no stall beyond the leader election and a few seconds',
  { timeout: 30 * 60_000 },
  async () => {
    const replication = await partitions(run.config);
    const topics = replication.filter((p) => !p.topic.startsWith('__'));
    assert.ok(topics.length > 0 && topics.every((p) => p.replicas.length === 3), 'pipeline topics have 3 replicas');
    assert.equal(nodes(run).length, 3);
    await flowing('the start');
    const redis = await redisWindowCounter(run.config);
    // Mid-stream: every sink consuming (the receiver is the external sink's far end, Redis its own).
    const redisStart = await redis.count();
    await waitFor('the Redis window to count new events', async () => (await redis.count()) > redisStart, {
      timeoutMs: 180_000,
      everyMs: 250,
    });
    const meters = [
      new StallMeter('receiver', async () => run.receiver.stats().events_unique),
      new StallMeter('Redis window', redis.count),
    ];
    for (const m of meters) m.start();
    const t0 = Date.now();
    const rounds: Array<{ id: number; killedAt: number; electionMs: number }> = [];
    const at = (ms: number) => `t+${((ms - t0) / 1000).toFixed(1)} s`;
    try {
      let spared: number[] = [1, 2, 3];
      for (const round of [1, 2]) {
        const cluster = await openClusterView(run.config);
        let electionMs: number;
        let killedAt: number;
        let victim: { id: number; leads: number };
        try {
          const view = await cluster.partitions();
          victim = busiestLeader(view, spared);
          killedAt = Date.now();
          await killNode(run, victim.id);
          log(`replicated: ${at(killedAt)} SIGKILL node ${victim.id} (leads ${victim.leads} of ${view.length})`);
          electionMs = await electionOver(cluster, victim.id, killedAt, 180_000);
        } finally {
          await cluster.close();
        }
        rounds.push({ id: victim.id, killedAt, electionMs });
        log(
          `replicated: node ${victim.id}'s leader election over ${(electionMs / 1000).toFixed(1)} s after the kill (nominal ${ELECTION_MS / 1000} s)`,
        );
        await flowing(`node ${victim.id} was killed`);
        const seconds = await restartNodes(run);
        await waitFullyReplicated(run.config, 180_000);
        log(`replicated: node ${victim.id} back in ${seconds.toFixed(1)} s, every replica in sync`);
        await flowing(`node ${victim.id} came back`);
        spared = spared.filter((id) => id !== victim.id);
        if (round === 1) assert.equal(spared.length, 2);
      }
    } finally {
      const end = Date.now();
      await Promise.all(meters.map((m) => m.stop()));
      await redis.close();
      const failures: string[] = [];
      // Each kill is held to its own election plus RESUME_MS, over the stalls that began from
      // shortly before it (the last progress before a kill comes up to a batch earlier: STALL_LEAD_MS)
      // until shortly before the next kill (its node's return included).
      for (const [i, r] of rounds.entries()) {
        const next = rounds[i + 1];
        const until = next ? next.killedAt - STALL_LEAD_MS : end;
        const bound = r.electionMs + RESUME_MS;
        for (const m of meters) {
          const s = longestWithin(m.stalls, r.killedAt - STALL_LEAD_MS, until);
          log(
            `replicated: node ${r.id} lost: longest stall at the ${m.name} ${(s.ms / 1000).toFixed(1)} s from ${at(s.from)} (election ${(r.electionMs / 1000).toFixed(1)} s, bound ${(bound / 1000).toFixed(1)} s)`,
          );
          if (s.ms > bound)
            failures.push(
              `${m.name}: progress stopped for ${s.ms} ms after node ${r.id}'s loss, more than ${bound} ms`,
            );
        }
      }
      if (failures.length > 0) assert.fail(failures.join('; '));
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
