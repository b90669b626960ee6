import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { loadConfig } from '../../../src/config/load.js';
import { PipelineError } from '../../../src/core/errors.js';
import type { SinkBatch } from '../../../src/core/sink-contract.js';
import { FileSink, listSegments, readState, segmentFile, type FileSinkState } from '../../../src/sinks/file/index.js';
import { LOCK_FILE } from '../../../src/sinks/file/dir-lock.js';
import { enrichedEvent } from '../../helpers/sink-harness.js';

/**
 * The file sink without Kafka: what a crash between an append and its state write leaves is cut
 * off at the next start (and before the next append after a failed state write); segments rotate
 * at FILE_SINK_MAX_BYTES; a directory of segments without a state file, or held by another live
 * process, is refused.
 */

const base = loadConfig();
const log = pino({ level: 'silent' });
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function newDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'engage-file-unit-'));
  dirs.push(dir);
  return dir;
}

function sinkOn(dir: string, maxBytes = 64 * 1024 * 1024): FileSink {
  return new FileSink({ config: { ...base, FILE_SINK_DIR: dir, FILE_SINK_MAX_BYTES: maxBytes }, log });
}

/** A sink that "crashes" after its append: the state write never happens. */
class CrashBeforeState extends FileSink {
  protected override async commitState(_state: FileSinkState): Promise<void> {
    throw new PipelineError('SINK_WRITE_FAILED', 'simulated crash before the state write', { retriable: true });
  }
}

function batch(partition: number, first: number, n: number, topic = 't'): SinkBatch {
  const records = Array.from({ length: n }, (_, i) => ({
    topic,
    partition,
    offset: String(first + i),
    key: null,
    event: enrichedEvent(),
  }));
  return { topic, partition, records, nextOffset: String(first + n) };
}

function lines(dir: string): Array<{ partition: number; offset: string }> {
  return listSegmentsSync(dir).flatMap((n) =>
    readFileSync(segmentFile(dir, n), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { partition: number; offset: string }),
  );
}

function listSegmentsSync(dir: string): number[] {
  let n = 1;
  const out: number[] = [];
  while (existsSync(segmentFile(dir, n))) out.push(n++);
  return out;
}

describe('file sink', () => {
  it('cuts an append whose state write never happened, at start and before the next append', async () => {
    const dir = newDir();
    const a = sinkOn(dir);
    await a.start();
    await a.write(batch(0, 0, 5));
    await a.close();
    const committed = statSync(segmentFile(dir, 1)).size;

    const crashing = new CrashBeforeState({ config: { ...base, FILE_SINK_DIR: dir }, log });
    await crashing.start();
    await assert.rejects(crashing.write(batch(0, 5, 5)), /simulated crash/);
    assert.ok(statSync(segmentFile(dir, 1)).size > committed, 'the lines were appended');
    assert.equal((await crashing.health()).ok, false, 'health says the last write failed');
    // No close: the process died. The next one finds the state of the first batch.
    const b = sinkOn(dir);
    await b.start();
    assert.equal(statSync(segmentFile(dir, 1)).size, committed, 'cut back to the stored length');
    assert.deepEqual(await b.storedOffsets('t', [0, 1]), new Map([[0, '5']]));
    await b.write(batch(0, 3, 7)); // a re-delivery overlapping what is stored
    await b.close();
    assert.deepEqual(
      lines(dir).map((l) => l.offset),
      ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
    );
  });

  it('rotates segments at FILE_SINK_MAX_BYTES and drops a segment whose rotation was never recorded', async () => {
    const dir = newDir();
    const a = sinkOn(dir, 2048);
    await a.start();
    for (let i = 0; i < 6; i += 1) await a.write(batch(1, i * 2, 2));
    await a.close();
    const segments = await listSegments(dir);
    assert.ok(segments.length >= 3, `segments: ${segments.join(', ')}`);
    const state = await readState(dir);
    assert.equal(state?.segment, segments.at(-1));
    for (const n of segments.slice(0, -1))
      assert.ok(statSync(segmentFile(dir, n)).size <= 2048, `segment ${n} within the limit`);
    assert.equal(lines(dir).length, 12);
    // A rotation whose state write never happened: a segment past the recorded one.
    writeFileSync(segmentFile(dir, (state?.segment ?? 0) + 1), '{"half":\n');
    const b = sinkOn(dir, 2048);
    await b.start();
    await b.close();
    assert.deepEqual(await listSegments(dir), segments);
  });

  it('refuses segments without a state file, and a directory another live process holds', async () => {
    const dir = newDir();
    writeFileSync(segmentFile(dir, 1), '{}\n');
    await assert.rejects(
      sinkOn(dir).start(),
      (e: unknown) => e instanceof PipelineError && e.code === 'SERVICE_MISCONFIGURED' && !e.retriable,
    );
    const held = newDir();
    writeFileSync(path.join(held, LOCK_FILE), String(process.ppid));
    await assert.rejects(
      sinkOn(held).start(),
      (e: unknown) => e instanceof PipelineError && e.retriable && /in use by another file sink/.test(e.message),
    );
    // A lock left by a process that is gone is taken over.
    writeFileSync(path.join(held, LOCK_FILE), '999999999');
    const s = sinkOn(held);
    await s.start();
    assert.equal((await s.health()).ok, true);
    await s.close();
    assert.equal(existsSync(path.join(held, LOCK_FILE)), false, 'released on close');
  });
});
