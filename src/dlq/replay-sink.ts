import type { Config } from '../config/load.js';
import { PipelineError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { sleep } from '../runtime/retry.js';
import { dlqReplayDecoder } from '../runtime/sink-decode.js';
import { avroDlqReplayDecoder, enrichedReader } from '../runtime/avro-decode.js';
import { startSinkRunner, type SinkRunnerSnapshot } from '../runtime/sink-runner.js';
import type { SinkFactory } from '../core/sink-contract.js';

/**
 * Replays a sink stage's DLQ entries through the ordinary sink runner, bounded to the DLQ range
 * scanned at the start: the runner consumes the DLQ topic in the replay group, the replay decoder
 * turns entries of the stage into records (others are skipped but settled), and the sink writes
 * them with the DLQ message's own position as the batch identity — so a sink with stored offsets
 * stores the DLQ topic's offsets and a replay interrupted at any point repeats nothing; an
 * idempotent sink dedupes on the event id. A record failing again is parked again (same stage,
 * attempts + 1), after the end of the range, so this run never re-reads it.
 */

export interface SinkReplayResult {
  replayed: number;
  failedAgain: number;
  snapshot: SinkRunnerSnapshot;
}

export function caughtUp(snapshot: SinkRunnerSnapshot, ends: Map<number, string>): boolean {
  for (const [partition, end] of ends) {
    const p = snapshot.partitions.find((x) => x.partition === partition);
    if (!p || BigInt(p.nextOffset) < BigInt(end) || p.busy) return false;
  }
  return true;
}

export async function replaySinkStage(
  config: Config,
  log: Logger,
  factory: SinkFactory,
  stage: string,
  groupId: string,
  ends: Map<number, string>,
  timeoutMs: number,
): Promise<SinkReplayResult> {
  // The parked bytes as the sink first read them: Avro or JSON in Avro mode, JSON otherwise.
  const reader = await enrichedReader(config);
  const runner = await startSinkRunner(config, factory, log, {
    topic: config.KAFKA_TOPIC_DLQ,
    groupId,
    stage,
    decoder: reader ? avroDlqReplayDecoder(stage, reader) : dlqReplayDecoder(stage),
    endOffsets: ends,
    fallbackStart: 'committed',
    lagRefreshMs: 1000,
  });
  const deadline = Date.now() + timeoutMs;
  let failure: unknown;
  runner.done.catch((err: unknown) => {
    failure = err;
  });
  try {
    while (!caughtUp(runner.snapshot(), ends)) {
      if (failure !== undefined) throw failure;
      if (Date.now() > deadline) {
        throw new PipelineError('TIMEOUT', `replay of ${stage} did not finish within ${timeoutMs} ms`, {
          details: { snapshot: runner.snapshot() },
        });
      }
      await sleep(100);
    }
  } finally {
    await runner.stop();
  }
  const snapshot = runner.snapshot();
  return { replayed: snapshot.recordsOut, failedAgain: snapshot.dlq, snapshot };
}
