import type { Config } from '../config/load.js';
import { PipelineError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { kafkaUnreachable } from '../kafka/admin.js';
import { createKafka } from '../kafka/client.js';
import { parseDlqEntry } from '../runtime/sink-decode.js';
import type { SinkFactory } from '../core/sink-contract.js';
import { readTopicRange } from './read.js';
import { replayProcessorStage } from './replay-processor.js';
import { replaySinkStage } from './replay-sink.js';

/**
 * `engage dlq replay --stage <stage> [--dry-run]`. Progress is the consumer group
 * `engage-dlq-replay-<stage>.<KAFKA_CLIENT_ID>` on the DLQ topic: a replay starts where the last one
 * committed. It first scans the DLQ from there to its current end (counting the stage's entries);
 * a dry run stops at that; otherwise `sink:<name>` entries are delivered through that sink's write
 * path (replay-sink.ts) and `processor` entries re-produced to their source topic
 * (replay-processor.ts), up to the scanned end only. A sink replay knows what failed again (parked
 * again, attempts + 1); a processor replay does not: the processor judges the re-sent records
 * asynchronously and parks one it rejects again as a new entry.
 */

export interface ReplayOptions {
  stage: string;
  dryRun?: boolean;
  /** The sink to deliver to, for a `sink:<name>` stage (the CLI resolves it from the registry). */
  factory?: SinkFactory;
  timeoutMs?: number;
}

export interface ReplayResult {
  stage: string;
  dryRun: boolean;
  /** DLQ messages scanned (from the group's position to the end). */
  scanned: number;
  /** Entries of the stage among them. */
  pending: number;
  byCode: Record<string, number>;
  /** Sink stage: records the sink wrote. Processor stage: entries re-sent to their source topic. */
  replayed: number;
  /**
   * Sink stage: records the sink refused again, parked again (same stage, attempts + 1). Processor
   * stage: null, not known here — the processor judges the re-sent records later, on its own, and
   * one it rejects again is parked as a new entry (attempts + 1), to replay like any other.
   */
  failedAgain: number | null;
}

export function replayGroupId(config: Config, stage: string): string {
  return `engage-dlq-replay-${stage.replace(/[^A-Za-z0-9._-]/g, '-')}.${config.KAFKA_CLIENT_ID}`;
}

export function isReplayableStage(stage: string): boolean {
  return stage === 'processor' || /^sink:[A-Za-z0-9_-]+$/.test(stage);
}

/** Stages that park entries a replay does not take: `backfill` (rows the transform rejected). */
export const UNREPLAYABLE_STAGES: readonly string[] = ['backfill'];

/**
 * Throws a USAGE error (exit 2) unless `stage` is one `use` takes: a replay takes `processor` and
 * `sink:<name>`; a listing takes those and the unreplayable stages. So a typo is refused instead
 * of being taken for a stage with nothing in the DLQ. (The CLI also checks that a sink is registered.)
 */
export function checkStage(stage: string, use: 'replay' | 'list'): void {
  if (isReplayableStage(stage)) return;
  if (use === 'replay')
    throw new PipelineError('USAGE', `cannot replay stage ${JSON.stringify(stage)}: use processor or sink:<name>`);
  if (!UNREPLAYABLE_STAGES.includes(stage)) {
    throw new PipelineError(
      'USAGE',
      `no DLQ stage ${JSON.stringify(stage)}: use processor, sink:<name> or ${UNREPLAYABLE_STAGES.join(', ')}`,
    );
  }
}

/** Each replay group's committed position per DLQ partition (entries before it were replayed); one admin connection. */
export async function committedOffsets(
  config: Config,
  groupIds: readonly string[],
): Promise<Map<string, Map<number, string>>> {
  const out = new Map<string, Map<number, string>>();
  if (groupIds.length === 0) return out;
  const admin = createKafka(config, `${config.KAFKA_CLIENT_ID}-dlq-admin`).admin();
  try {
    await admin.connect();
    for (const groupId of groupIds) {
      const res = await admin.fetchOffsets({ groupId, topics: [config.KAFKA_TOPIC_DLQ] });
      const offsets = new Map<number, string>();
      for (const t of res) for (const p of t.partitions) if (/^\d+$/.test(p.offset)) offsets.set(p.partition, p.offset);
      out.set(groupId, offsets);
    }
    return out;
  } catch (err) {
    throw kafkaUnreachable(config, err);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

export async function replayDlq(config: Config, log: Logger, opts: ReplayOptions): Promise<ReplayResult> {
  const { stage } = opts;
  checkStage(stage, 'replay');
  const timeoutMs = opts.timeoutMs ?? 30 * 60 * 1000;
  const groupId = replayGroupId(config, stage);
  const from = (await committedOffsets(config, [groupId])).get(groupId) ?? new Map<number, string>();
  const result: ReplayResult = {
    stage,
    dryRun: opts.dryRun ?? false,
    scanned: 0,
    pending: 0,
    byCode: {},
    replayed: 0,
    failedAgain: stage === 'processor' ? null : 0,
  };
  const scan = await readTopicRange(
    config,
    config.KAFKA_TOPIC_DLQ,
    (m) => {
      result.scanned++;
      const e = parseDlqEntry(m.value);
      if (!e || e.stage !== stage) return;
      result.pending++;
      result.byCode[e.code] = (result.byCode[e.code] ?? 0) + 1;
    },
    { from },
  );
  if (result.dryRun || result.pending === 0) return result;
  // The range to replay ends after the last message scanned (entries parked later are not re-read).
  const ends = new Map<number, string>();
  for (const p of scan.highWatermarks.keys()) {
    const last = scan.lastOffsets.get(p);
    ends.set(p, last !== undefined ? (BigInt(last) + 1n).toString() : (from.get(p) ?? '0'));
  }
  log.info({ stage, groupId, pending: result.pending, ends: Object.fromEntries(ends) }, 'replaying DLQ entries');
  if (stage === 'processor') {
    const r = await replayProcessorStage(config, log, groupId, ends, from, timeoutMs);
    result.replayed = r.replayed;
    return result;
  }
  if (!opts.factory) throw new PipelineError('USAGE', `no sink given to replay ${stage} into`);
  const r = await replaySinkStage(config, log, opts.factory, stage, groupId, ends, timeoutMs);
  result.replayed = r.replayed;
  result.failedAgain = r.failedAgain;
  return result;
}

/** The replay's outcome for a terminal: what was delivered and, where this run knows it, what failed again. */
export function formatReplayResult(r: ReplayResult): string {
  const codes =
    Object.entries(r.byCode)
      .map(([c, n]) => `${c}=${n}`)
      .join(' ') || 'none';
  const lines = [`stage ${r.stage}: ${r.pending} pending of ${r.scanned} DLQ messages scanned (by code: ${codes})`];
  if (r.dryRun) lines.push('dry run: nothing replayed');
  else if (r.failedAgain === null) {
    lines.push(
      `re-sent ${r.replayed} to their source topic for the processor to judge again, once it runs; this command does not wait for its verdict: ` +
        'one it rejects again is parked again as a new entry (attempts + 1; see engage dlq list --stage processor)',
    );
  } else lines.push(`replayed ${r.replayed}, failed again ${r.failedAgain} (parked again with attempts + 1)`);
  return `${lines.join('\n')}\n`;
}
