import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../../config/load.js';
import { errorMessage, PipelineError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { Sink, SinkBatch, SinkContext, SinkHealth, SinkRecord } from '../../core/sink-contract.js';
import { acquireDirLock, releaseDirLock } from './dir-lock.js';
import { listSegments, readState, recoverSegments, segmentFile, writeState, type FileSinkState } from './state-file.js';

/**
 * `engage sink file`: the enriched events as JSON lines in FILE_SINK_DIR, one line per record
 * (`{"topic","partition","offset","event"}`), in segments `events-000001.jsonl`, … of about
 * FILE_SINK_MAX_BYTES each (a segment is closed before an append would take it past the limit; one
 * batch larger than the limit fills a segment alone).
 *
 * Exactly once through stored offsets: each batch's lines are appended and fsynced, then the
 * state file (state-file.ts) records the segment's new length together with the partition's next
 * offset, atomically. A crash between the two leaves bytes past the recorded length: they are cut
 * off at start (and before the next append after a failed state write), and the runtime re-delivers
 * those records from the stored offsets. Records below their partition's stored offset are skipped.
 * One process per directory (a lock file holds it); writes are serialised.
 */

export class FileSink implements Sink {
  readonly name = 'file';
  private readonly dir: string;
  private readonly maxBytes: number;
  private readonly log: Logger;
  private state: FileSinkState = { segment: 1, length: 0, offsets: {} };
  private handle: FileHandle | null = null;
  /** An append may have left bytes past `state.length` (its state write failed): cut them first. */
  private dirty = false;
  private queue: Promise<unknown> = Promise.resolve();
  private lastError: string | null = null;
  private started = false;
  private appended = 0;

  constructor(ctx: SinkContext) {
    this.dir = path.resolve(requireDir(ctx.config));
    this.maxBytes = ctx.config.FILE_SINK_MAX_BYTES;
    this.log = ctx.log;
  }

  async start(): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true });
    await acquireDirLock(this.dir);
    const stored = await readState(this.dir);
    if (stored === null) {
      const segments = await listSegments(this.dir);
      if (segments.length > 0) {
        throw new PipelineError(
          'SERVICE_MISCONFIGURED',
          `${this.dir} holds event segments but no state.json: their offsets are unknown; move them away or restore the state file`,
          { details: { dir: this.dir } },
        );
      }
      await writeState(this.dir, this.state);
    } else {
      const { truncatedBytes, removedSegments } = await recoverSegments(this.dir, stored);
      if (truncatedBytes > 0 || removedSegments.length > 0)
        this.log.warn(
          { dir: this.dir, truncatedBytes, removedSegments },
          'file sink: removed an append whose state was never written',
        );
      this.state = stored;
    }
    this.started = true;
  }

  async storedOffsets(topic: string, partitions: number[]): Promise<Map<number, string>> {
    const stored = this.state.offsets[topic] ?? {};
    const out = new Map<number, string>();
    for (const p of partitions) {
      const next = stored[String(p)];
      if (next !== undefined) out.set(p, next);
    }
    return out;
  }

  write(batch: SinkBatch): Promise<void> {
    return this.serial(async () => {
      try {
        await this.append(batch);
        this.lastError = null;
      } catch (err) {
        // A file system error (full disk, permissions) is waited out, as any sink's outage.
        const e =
          err instanceof PipelineError
            ? err
            : new PipelineError('SINK_WRITE_FAILED', `file sink: ${errorMessage(err)}`, {
                retriable: true,
                cause: err,
              });
        this.lastError = `${e.code}: ${e.message}`;
        throw e;
      }
    });
  }

  async health(): Promise<SinkHealth> {
    const detail = {
      dir: this.dir,
      segment: this.state.segment,
      segment_bytes: this.state.length,
      records_appended: this.appended,
    };
    if (!this.started) return { ok: false, detail: { ...detail, error: 'not started' } };
    return this.lastError === null ? { ok: true, detail } : { ok: false, detail: { ...detail, error: this.lastError } };
  }

  status(): object {
    return { dir: this.dir, segment: this.state.segment, segment_bytes: this.state.length };
  }

  async close(): Promise<void> {
    await this.serial(async () => {
      await this.handle?.close().catch(() => undefined);
      this.handle = null;
      if (this.started) await releaseDirLock(this.dir);
      this.started = false;
    });
  }

  private async append(batch: SinkBatch): Promise<void> {
    if (this.dirty) {
      await this.handle?.close().catch(() => undefined);
      this.handle = null;
      await recoverSegments(this.dir, this.state);
      this.dirty = false;
    }
    const stored = this.state.offsets[batch.topic]?.[String(batch.partition)];
    const from = stored === undefined ? -1n : BigInt(stored);
    if (BigInt(batch.nextOffset) <= from) return; // all of it stored already
    const fresh = batch.records.filter((r) => BigInt(r.offset) >= from);
    const bytes = Buffer.from(fresh.map(renderLine).join(''));
    let { segment, length } = this.state;
    if (bytes.length > 0 && length > 0 && length + bytes.length > this.maxBytes) {
      segment += 1;
      length = 0;
      await this.handle?.close();
      this.handle = null;
    }
    if (bytes.length > 0) {
      this.dirty = true;
      this.handle ??= await fs.open(segmentFile(this.dir, segment), 'a');
      await this.handle.write(bytes);
      await this.handle.datasync();
    }
    const offsets = {
      ...this.state.offsets,
      [batch.topic]: { ...this.state.offsets[batch.topic], [String(batch.partition)]: batch.nextOffset },
    };
    const next: FileSinkState = { segment, length: length + bytes.length, offsets };
    this.dirty = true;
    await this.commitState(next);
    this.state = next;
    this.dirty = false;
    this.appended += fresh.length;
  }

  /** The state write that commits an append (a seam for tests of a crash before it). */
  protected async commitState(state: FileSinkState): Promise<void> {
    await writeState(this.dir, state);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

function renderLine(r: SinkRecord): string {
  return `${JSON.stringify({ topic: r.topic, partition: r.partition, offset: r.offset, event: r.event })}\n`;
}

function requireDir(config: Config): string {
  const dir = config.FILE_SINK_DIR;
  if (dir === undefined)
    throw new PipelineError(
      'CONFIG_INVALID',
      'the file sink needs FILE_SINK_DIR: the directory its JSON-lines segments and state file go to',
    );
  return dir;
}
