import { promises as fs } from 'node:fs';
import path from 'node:path';
import { PipelineError } from '../../core/errors.js';

/**
 * The file sink's sidecar state (`state.json` in FILE_SINK_DIR): which segment is being appended
 * to, how long it is, and the next offset of every (topic, partition) whose records those bytes
 * hold. It is the sink's commit record: written after each append, atomically (a temporary file
 * fsynced, then renamed over the old one), so it always names a length the segment reached. Bytes
 * past that length, and segments past that one, are an append whose state write never happened:
 * `recoverSegments` removes them at start, and the runtime re-delivers those records from the
 * stored offsets.
 */

export interface FileSinkState {
  /** The segment being appended to (events-<segment, 6 digits>.jsonl), from 1. */
  segment: number;
  /** Its length in bytes as of the last committed append. */
  length: number;
  /** topic → partition → next offset (int64 as a decimal string). */
  offsets: Record<string, Record<string, string>>;
}

export const STATE_FILE = 'state.json';
const SEGMENT = /^events-(\d{6,})\.jsonl$/;

export function segmentFile(dir: string, segment: number): string {
  return path.join(dir, `events-${String(segment).padStart(6, '0')}.jsonl`);
}

/** The segments present in `dir`, by number. */
export async function listSegments(dir: string): Promise<number[]> {
  const names = await fs.readdir(dir);
  return names
    .flatMap((n) => {
      const m = SEGMENT.exec(n);
      return m?.[1] ? [Number(m[1])] : [];
    })
    .sort((a, b) => a - b);
}

/** The stored state; null when there is none (a new directory). Throws when it is unreadable. */
export async function readState(dir: string): Promise<FileSinkState | null> {
  let text: string;
  try {
    text = await fs.readFile(path.join(dir, STATE_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new PipelineError(
      'SINK_WRITE_FAILED',
      `cannot read ${path.join(dir, STATE_FILE)}: ${(err as Error).message}`,
      { retriable: true, cause: err },
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = null;
  }
  if (!isState(parsed))
    throw new PipelineError('SERVICE_MISCONFIGURED', `${path.join(dir, STATE_FILE)} is not a file sink state`, {
      details: { dir },
    });
  return parsed;
}

/** Replaces the state atomically: after a crash the old or the new state is found, never a mix. */
export async function writeState(dir: string, state: FileSinkState): Promise<void> {
  const file = path.join(dir, STATE_FILE);
  const tmp = `${file}.tmp`;
  const handle = await fs.open(tmp, 'w');
  try {
    await handle.writeFile(JSON.stringify(state));
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(tmp, file);
}

/**
 * Makes the segments agree with `state`: the current segment cut back to the recorded length,
 * later segments (a rotation whose state write never happened) removed. A current segment shorter
 * than the state says lost committed records: that is refused, not repaired.
 */
export async function recoverSegments(
  dir: string,
  state: FileSinkState,
): Promise<{ truncatedBytes: number; removedSegments: number[] }> {
  const current = segmentFile(dir, state.segment);
  const size = await fs.stat(current).then(
    (s) => s.size,
    () => 0,
  );
  if (size < state.length) {
    throw new PipelineError(
      'SERVICE_MISCONFIGURED',
      `${current} holds ${size} bytes, fewer than the ${state.length} its state records: committed records are gone`,
      { details: { dir } },
    );
  }
  if (size > state.length) await fs.truncate(current, state.length);
  const removed = (await listSegments(dir)).filter((n) => n > state.segment);
  for (const n of removed) await fs.rm(segmentFile(dir, n), { force: true });
  return { truncatedBytes: size - state.length, removedSegments: removed };
}

function isState(v: unknown): v is FileSinkState {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return (
    Number.isInteger(o.segment) && Number.isInteger(o.length) && typeof o.offsets === 'object' && o.offsets !== null
  );
}
