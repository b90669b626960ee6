import type { Config } from '../config/load.js';
import type { DlqEntry } from '../core/types.js';
import { errorMessage } from '../core/errors.js';
import { AvroReader } from '../kafka/schema-registry/avro-reader.js';
import { connectConfiguredRegistry } from '../kafka/schema-registry/from-config.js';
import { parseDlqEntry } from '../runtime/sink-decode.js';
import { readTopicRange } from './read.js';
import { checkStage, committedOffsets, isReplayableStage, replayGroupId } from './replay.js';

/**
 * `engage dlq list`: reads the whole DLQ topic (bounded by its high watermark at the start) and
 * keeps the newest `limit` entries of the wanted stage, with counts by stage and by code, and
 * whether each entry was replayed: an entry before its stage's replay position (the group
 * `engage dlq replay` commits, replay.ts) was replayed; an entry that failed again was parked
 * again as a new entry, which is to replay.
 */

/** `replayed`: an `engage dlq replay` has passed it; `not replayable`: a stage replay does not take (e.g. `backfill`, rows the transform rejected). */
export type ReplayStatus = 'to replay' | 'replayed' | 'not replayable';

export interface DlqListed {
  /** Where the entry itself sits in the DLQ topic. */
  dlqPartition: number;
  dlqOffset: string;
  entry: DlqEntry;
  replay: ReplayStatus;
  /** An Avro value (Confluent wire format) decoded through the registry as JSON text, or why it was not. */
  avro?: { schemaId: number; json?: string; error?: string };
}

export interface DlqListing {
  entries: DlqListed[];
  total: number;
  matched: number;
  /** Messages of the DLQ topic that are not DLQ entries. */
  unreadable: number;
  byStage: Record<string, number>;
  /** Entries of each replayable stage not replayed yet. */
  toReplayByStage: Record<string, number>;
  byCode: Record<string, number>;
}

export interface DlqListOptions {
  /** Only entries of this stage; one no stage parks entries as is a USAGE error (replay.ts `checkStage`). */
  stage?: string;
  limit?: number;
}

export async function listDlq(config: Config, opts: DlqListOptions = {}): Promise<DlqListing> {
  if (opts.stage !== undefined) checkStage(opts.stage, 'list');
  const limit = opts.limit ?? 20;
  const kept: DlqListed[] = [];
  const listing: DlqListing = {
    entries: kept,
    total: 0,
    matched: 0,
    unreadable: 0,
    byStage: {},
    toReplayByStage: {},
    byCode: {},
  };
  /** Per replayable stage, per DLQ partition: the offsets of its entries. */
  const positions = new Map<string, Map<number, number[]>>();
  await readTopicRange(config, config.KAFKA_TOPIC_DLQ, (m) => {
    listing.total++;
    const entry = parseDlqEntry(m.value);
    if (!entry) {
      listing.unreadable++;
      return;
    }
    listing.byStage[entry.stage] = (listing.byStage[entry.stage] ?? 0) + 1;
    if (isReplayableStage(entry.stage)) {
      const byPartition = positions.get(entry.stage) ?? new Map<number, number[]>();
      positions.set(entry.stage, byPartition);
      const offsets = byPartition.get(m.partition) ?? [];
      byPartition.set(m.partition, offsets);
      offsets.push(Number(m.offset));
    }
    if (opts.stage !== undefined && entry.stage !== opts.stage) return;
    listing.matched++;
    listing.byCode[entry.code] = (listing.byCode[entry.code] ?? 0) + 1;
    kept.push({ dlqPartition: m.partition, dlqOffset: m.offset, entry, replay: 'not replayable' });
    if (kept.length > limit) kept.shift();
  });
  const groups = await committedOffsets(
    config,
    [...positions.keys()].map((stage) => replayGroupId(config, stage)),
  );
  /** A replayable stage's replay position per DLQ partition (entries before it were replayed). */
  const replayedBefore = (stage: string) => groups.get(replayGroupId(config, stage)) ?? new Map<number, string>();
  for (const [stage, byPartition] of positions) {
    const committed = replayedBefore(stage);
    let toReplay = 0;
    for (const [partition, offsets] of byPartition) {
      const from = Number(committed.get(partition) ?? 0);
      for (const o of offsets) if (o >= from) toReplay++;
    }
    listing.toReplayByStage[stage] = toReplay;
  }
  await decodeAvroValues(config, kept);
  for (const k of kept) {
    if (positions.has(k.entry.stage))
      k.replay =
        Number(k.dlqOffset) < Number(replayedBefore(k.entry.stage).get(k.dlqPartition) ?? 0) ? 'replayed' : 'to replay';
  }
  return listing;
}

/**
 * Decodes the listed entries' Avro values (KAFKA_VALUE_FORMAT=avro: the wire format's magic byte
 * and schema id) through the registry, so an operator reads fields, not hex. Only entries shown are
 * decoded; a value kept only as a prefix, a registry that does not answer or a schema it lacks
 * leaves the hex preview with the reason.
 */
async function decodeAvroValues(config: Config, listed: DlqListed[]): Promise<void> {
  const avro = listed.flatMap((k) => {
    if (k.entry.value_base64 === null) return [];
    const bytes = Buffer.from(k.entry.value_base64, 'base64');
    const schemaId = AvroReader.schemaIdOf(bytes);
    if (schemaId === null) return [];
    k.avro = { schemaId };
    return [{ k, bytes }];
  });
  if (avro.length === 0) return;
  let registry;
  try {
    registry = await connectConfiguredRegistry(config);
  } catch (err) {
    for (const { k } of avro) k.avro = { schemaId: k.avro?.schemaId ?? -1, error: errorMessage(err) };
    return;
  }
  const readers = new Map<string, AvroReader>();
  for (const { k, bytes } of avro) {
    const schemaId = k.avro?.schemaId ?? -1;
    if (k.entry.value_truncated) {
      k.avro = { schemaId, error: 'only a prefix of the value is kept' };
      continue;
    }
    let reader = readers.get(k.entry.topic);
    if (!reader) readers.set(k.entry.topic, (reader = registry.reader(k.entry.topic, 'value')));
    try {
      await reader.prepare([bytes]);
      k.avro = { schemaId, json: JSON.stringify(reader.decode(bytes)) };
    } catch (err) {
      k.avro = { schemaId, error: errorMessage(err) };
    }
  }
}

/** A short, printable preview of an entry's original value (UTF-8 if it is, else hex). */
export function previewValue(valueBase64: string | null, max = 60): string {
  if (valueBase64 === null) return '(null)';
  const bytes = Buffer.from(valueBase64, 'base64');
  const text = bytes.toString('utf8');
  const printable = !text.includes('\uFFFD') && !/[\u0000-\u0008\u000e-\u001f]/.test(text);
  const shown = printable ? text.replace(/\s+/g, ' ') : `0x${bytes.toString('hex')}`;
  return clip(shown, max);
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** One line per entry for a terminal. */
export function formatListing(listing: DlqListing): string {
  const lines = listing.entries.map(({ dlqPartition, dlqOffset, entry: e, replay, avro }) =>
    [
      `${dlqPartition}:${dlqOffset}`.padEnd(8),
      e.failed_at,
      e.stage.padEnd(15),
      replay.padEnd(14),
      e.code.padEnd(16),
      `${e.topic}/${e.partition}@${e.offset}`,
      `attempts=${e.attempts}`,
      `reason=${JSON.stringify(e.reason.length > 100 ? `${e.reason.slice(0, 99)}…` : e.reason)}`,
      avro?.json !== undefined
        ? `value=avro#${avro.schemaId} ${clip(avro.json, 200)}`
        : `value=${previewValue(e.value_base64)}${e.value_truncated ? ` (a prefix of ${e.value_bytes ?? '?'} bytes)` : ''}` +
          (avro?.error ? ` (avro#${avro.schemaId}, not decoded: ${clip(avro.error, 100)})` : ''),
    ].join('  '),
  );
  const stages =
    Object.entries(listing.byStage)
      .map(([s, n]) => `${s}=${n}${s in listing.toReplayByStage ? ` (${listing.toReplayByStage[s]} to replay)` : ''}`)
      .join(' ') || 'none';
  const codes =
    Object.entries(listing.byCode)
      .map(([c, n]) => `${c}=${n}`)
      .join(' ') || 'none';
  lines.push(
    `${listing.matched} matching of ${listing.total} DLQ entries (showing the newest ${listing.entries.length}); by stage: ${stages}; by code: ${codes}` +
      (listing.unreadable > 0 ? `; ${listing.unreadable} unreadable` : ''),
  );
  return `${lines.join('\n')}\n`;
}
