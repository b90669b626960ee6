import { createClient } from 'redis';
import type { Config } from '../../src/config/load.js';
import { readStackState, type NodeState } from '../../src/config/stack-state.js';
import { pipelineTopics } from '../../src/kafka/admin.js';
import { createKafka } from '../../src/kafka/client.js';
import { RedisKeys, windowMinutes } from '../../src/sinks/redis/keys.js';
import { isAlive } from '../../src/stack/process.js';
import { stackUp } from '../../src/stack/stack.js';
import { waitFor } from '../helpers/wait.js';
import type { PipelineRun } from './pipeline-run.js';

/**
 * The replicated-Kafka tests' view of a private N-node cluster (`STACK_KAFKA_BROKERS`): who leads
 * which partition, whether every replica is back in sync, SIGKILL of one node (its pid from the
 * run's stack state) and its restart, and a meter of the pipeline's progress at its far end (the
 * receiver's distinct events, the Redis window's count) that finds the longest stall.
 */

/** The pipeline's topics and Kafka's internal ones (those that exist yet). */
const INTERNAL = ['__consumer_offsets', '__transaction_state'];

export interface PartitionView {
  topic: string;
  partition: number;
  leader: number;
  replicas: number[];
  isr: number[];
}

/** One admin client kept open for several looks at the cluster (see `electionOver`). */
export interface ClusterView {
  /** Every partition of the pipeline's and the internal topics, with leader, replicas and ISR. */
  partitions(): Promise<PartitionView[]>;
  close(): Promise<void>;
}

export async function openClusterView(config: Config): Promise<ClusterView> {
  const admin = createKafka(config, `${config.KAFKA_CLIENT_ID}-test-cluster`).admin();
  await admin.connect();
  return {
    partitions: async () => {
      const existing = new Set(await admin.listTopics());
      const topics = [...pipelineTopics(config).map((t) => t.topic), ...INTERNAL].filter((t) => existing.has(t));
      const md = await admin.fetchTopicMetadata({ topics });
      return md.flatMap((t) =>
        t.partitions.map((p) => ({
          topic: t.name,
          partition: p.partitionId,
          leader: p.leader,
          replicas: p.replicas,
          isr: p.isr,
        })),
      );
    },
    close: () => admin.disconnect().catch(() => undefined),
  };
}

/** Every partition of the pipeline's and the internal topics, with leader, replicas and ISR. */
export async function partitions(config: Config): Promise<PartitionView[]> {
  const view = await openClusterView(config);
  try {
    return await view.partitions();
  } finally {
    await view.close();
  }
}

/** The node among `candidates` that leads the most partitions, and how many it leads. */
export function busiestLeader(view: PartitionView[], candidates: number[]): { id: number; leads: number } {
  const leads = new Map(candidates.map((id) => [id, 0]));
  for (const p of view) if (leads.has(p.leader)) leads.set(p.leader, (leads.get(p.leader) ?? 0) + 1);
  const [id, n] = [...leads].sort((a, b) => b[1] - a[1])[0] ?? [candidates[0] ?? 1, 0];
  return { id, leads: n };
}

/** Waits until every partition has all its replicas in sync (a restarted node has caught up). */
export async function waitFullyReplicated(config: Config, timeoutMs: number): Promise<void> {
  let last: PartitionView[] = [];
  await waitFor(
    'every partition to have all its replicas in sync',
    async () => {
      last = await partitions(config).catch(() => []);
      return last.length > 0 && last.every((p) => p.isr.length === p.replicas.length && p.leader >= 0);
    },
    {
      timeoutMs,
      everyMs: 500,
      describe: () =>
        last
          .filter((p) => p.isr.length < p.replicas.length)
          .map((p) => `${p.topic}/${p.partition} isr ${p.isr.join(',')}`),
    },
  );
}

/**
 * Waits until the cluster has moved everything away from node `id` — every partition led by
 * another node and `id` in no ISR: its leader election is over (the controller fenced it) — and
 * returns the milliseconds since `since`. It looks through `view`, a client opened before the
 * kill (a client created per look, with a dead node among its bootstrap servers, was seen to fail
 * every look for minutes); a look that waits on the brokers can only lengthen the result.
 */
export async function electionOver(view: ClusterView, id: number, since: number, timeoutMs: number): Promise<number> {
  let last: PartitionView[] = [];
  let error = '';
  await waitFor(
    `the partitions node ${id} led or followed to move on without it`,
    async () => {
      last = await view.partitions().catch((err: unknown) => {
        error = err instanceof Error ? err.message : String(err);
        return [];
      });
      return last.length > 0 && last.every((p) => p.leader >= 0 && p.leader !== id && !p.isr.includes(id));
    },
    {
      timeoutMs,
      everyMs: 250,
      describe: () => [
        ...last
          .filter((p) => p.leader === id || p.leader < 0 || p.isr.includes(id))
          .map((p) => `${p.topic}/${p.partition} leader ${p.leader} isr ${p.isr.join(',')}`),
        ...(last.length === 0 && error ? [`last error: ${error}`] : []),
      ],
    },
  );
  return Date.now() - since;
}

/** The run's Kafka nodes, from its stack state. */
export function nodes(run: PipelineRun): NodeState[] {
  const n = readStackState(run.stackDir)?.services.kafka?.nodes;
  if (!n) throw new Error(`the run's stack (${run.stackDir}) has no Kafka cluster`);
  return n;
}

/** SIGKILLs node `id`; resolves once its process is gone. */
export async function killNode(run: PipelineRun, id: number): Promise<void> {
  const node = nodes(run).find((n) => n.id === id);
  if (!node) throw new Error(`no Kafka node ${id}`);
  process.kill(node.pid, 'SIGKILL');
  await waitFor(`Kafka node ${id} (pid ${node.pid}) to be gone`, () => !isAlive(node.pid), 15_000);
}

/** Starts the dead nodes again (`stack up` of the run's stack), returns the seconds it took. */
export async function restartNodes(run: PipelineRun): Promise<number> {
  const t0 = Date.now();
  await stackUp(run.base, { topics: false });
  return (Date.now() - t0) / 1000;
}

export interface Stall {
  /** The longest time without progress, ms, and when it began (epoch ms). */
  ms: number;
  from: number;
}

/**
 * Samples a progress counter every `everyMs` and keeps the longest interval between two
 * increases, and every interval of at least `keepMs` (`stalls`). A sample that took longer than
 * `everyMs` (its probe waited) cannot hide progress: an increase is dated at the sample that saw
 * it, so a slow probe can only lengthen a stall.
 */
export class StallMeter {
  private last = -1;
  private lastRise = 0;
  private longest: Stall = { ms: 0, from: 0 };
  private kept: Stall[] = [];
  private running = false;
  private loop: Promise<void> | undefined;

  constructor(
    readonly name: string,
    private readonly probe: () => Promise<number>,
    private readonly everyMs = 100,
    private readonly keepMs = 1000,
  ) {}

  start(): void {
    this.running = true;
    this.longest = { ms: 0, from: 0 };
    this.kept = [];
    this.lastRise = Date.now();
    this.loop = (async () => {
      while (this.running) {
        const v = await this.probe().catch(() => this.last);
        const now = Date.now();
        if (v > this.last) {
          if (this.last >= 0) this.record({ ms: now - this.lastRise, from: this.lastRise });
          this.last = v;
          this.lastRise = now;
        }
        await new Promise((r) => setTimeout(r, this.everyMs));
      }
    })();
  }

  /** Stops sampling; the stall still open at the stop counts too. */
  async stop(): Promise<Stall> {
    this.running = false;
    await this.loop;
    this.record({ ms: Date.now() - this.lastRise, from: this.lastRise });
    return this.longest;
  }

  /** Every interval without progress of at least `keepMs`, in order (complete after `stop`). */
  get stalls(): readonly Stall[] {
    return this.kept;
  }

  private record(s: Stall): void {
    if (s.ms > this.longest.ms) this.longest = s;
    if (s.ms >= this.keepMs) this.kept.push(s);
  }
}

/** The longest of `stalls` that began in [from, to) (epoch ms), or none. */
export function longestWithin(stalls: readonly Stall[], from: number, to: number): Stall {
  return stalls
    .filter((s) => s.from >= from && s.from < to)
    .reduce<Stall>((a, s) => (s.ms > a.ms ? s : a), { ms: 0, from });
}

/** The Redis window's event count (the sum of its minutes' totals), on a client kept open. */
export async function redisWindowCounter(
  config: Config,
): Promise<{ count: () => Promise<number>; close(): Promise<void> }> {
  const client = createClient({ url: config.redisUrl, socket: { connectTimeout: 5000 } });
  client.on('error', () => undefined);
  await client.connect();
  const keys = new RedisKeys(config.REDIS_KEY_PREFIX);
  return {
    count: async () => {
      const minutes = windowMinutes(Date.now(), config.REDIS_AGGREGATION_WINDOW_MINUTES);
      const totals = await client.mGet(minutes.map((m) => keys.total(m)));
      return totals.reduce((acc, v) => acc + Number(v ?? 0), 0);
    },
    close: async () => {
      await client.quit().catch(() => undefined);
    },
  };
}
