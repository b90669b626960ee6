import { KafkaJS } from '@confluentinc/kafka-javascript';
import type { Config } from '../../src/config/load.js';
import { createKafka } from '../../src/kafka/client.js';
import { processorGroupId } from '../../src/processor/processor.js';
import { sinkGroupId } from '../../src/runtime/sink-runner-options.js';
import { SupervisedChild } from '../../src/supervisor/child.js';
import { engageEntry } from '../../src/supervisor/entry.js';
import { componentSpecs } from '../../src/supervisor/supervisor.js';
import { waitFor } from '../helpers/wait.js';
import type { PipelineRun } from './pipeline-run.js';

/**
 * Scaling one stage of a running pipeline the way an autoscaler does (KEDA: more pods of the same
 * Deployment, then fewer): extra instances of the stage run the very command of the run's own
 * (`<stage>-2`, `<stage>-3`, each its own process and log), are stopped with SIGTERM (they drain
 * and commit, as a pod does at scale-down), and each step returns once the stage's consumer group
 * has exactly that many members and they hold every partition between them (each at least one
 * while there are no more members than partitions).
 */

type Stage = 'processor' | `sink-${string}`;

const extras = new WeakMap<PipelineRun, Map<Stage, SupervisedChild[]>>();

function groupAndTopic(config: Config, stage: Stage): { group: string; topic: string } {
  return stage === 'processor'
    ? { group: processorGroupId(config), topic: config.KAFKA_TOPIC_ENGAGEMENT_EVENTS }
    : { group: sinkGroupId(config, stage.slice('sink-'.length)), topic: config.KAFKA_TOPIC_ENRICHED };
}

/** Each member's partitions of `topic` in `group` (null while the group is rebalancing or unknown). */
async function membership(config: Config, group: string, topic: string): Promise<number[][] | null> {
  const admin = createKafka(config, `${config.KAFKA_CLIENT_ID}-test-scale`).admin();
  await admin.connect();
  try {
    const described = await admin.describeGroups([group], { timeout: 5000 });
    const g = described.groups.find((x) => x.groupId === group);
    // Stable only: a rebalancing group's assignment is stale.
    if (!g || g.error || g.state !== KafkaJS.ConsumerGroupStates.STABLE) return null;
    return g.members.map((m) =>
      (m.assignment?.topicPartitions ?? []).filter((tp) => tp.topic === topic).map((tp) => tp.partition),
    );
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * Runs `instances` instances of `stage` (the run's own one and as many extra as needed), waits
 * until its group has that many members holding all `partitions` partitions; returns the seconds.
 */
export async function scaleStage(
  run: PipelineRun,
  stage: Stage,
  instances: number,
  partitions: number,
): Promise<number> {
  const t0 = Date.now();
  const byStage = extras.get(run) ?? new Map<Stage, SupervisedChild[]>();
  extras.set(run, byStage);
  const running = byStage.get(stage) ?? [];
  const spec = componentSpecs(run.config, {
    generator: false,
    rate: 0,
    receiver: false,
    api: false,
    sinks: stage === 'processor' ? [] : [stage.slice('sink-'.length)],
  }).find((s) => s.name === stage);
  if (!spec) throw new Error(`no component ${stage}`);
  while (running.length < instances - 1) {
    const name = `${stage}-${running.length + 2}`;
    const child = new SupervisedChild(
      { ...spec, name, env: { ...run.childEnv, ...spec.env } },
      engageEntry(),
      run.logsDir,
    );
    child.start();
    running.push(child);
  }
  while (running.length > instances - 1) await running.pop()?.stop();
  byStage.set(stage, running);
  const { group, topic } = groupAndTopic(run.config, stage);
  let last: number[][] | null = null;
  await waitFor(
    `${stage}'s group ${group} to have ${instances} members holding all ${partitions} partitions`,
    async () => {
      last = await membership(run.config, group, topic).catch(() => null);
      if (!last || last.length !== instances) return false;
      const held = new Set(last.flat());
      const eachHolds = instances > partitions || last.every((m) => m.length > 0);
      return held.size === partitions && eachHolds;
    },
    { timeoutMs: 180_000, everyMs: 500, describe: () => last },
  );
  return (Date.now() - t0) / 1000;
}

/** Stops every extra instance the run still has (for a test's clean-up). */
export async function stopExtraInstances(run: PipelineRun): Promise<void> {
  for (const children of extras.get(run)?.values() ?? []) for (const c of children) await c.stop();
}
