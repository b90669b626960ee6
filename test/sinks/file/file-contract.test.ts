import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { pino } from 'pino';
import { FileSink } from '../../../src/sinks/file/index.js';
import type { TestEnv } from '../../helpers/env.js';
import { sinkContractSuite, type MakeSink } from '../contract-suite.js';

/**
 * The shared sink contract (test/sinks/contract-suite.ts) for the file sink on the real stack.
 * Storage = a directory per test env (a restart re-creates the sink over the same one); `count` is
 * the lines of every segment, read directly, so a record appended twice would show. Run once with
 * the default segment size and once with 1 KiB segments, so the suite crosses rotations.
 */

const dirs = new Map<string, string>();

after(() => {
  for (const dir of dirs.values()) rmSync(dir, { recursive: true, force: true });
});

export function countLines(dir: string): number {
  return readdirSync(dir)
    .filter((n) => n.endsWith('.jsonl'))
    .reduce((n, f) => n + readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean).length, 0);
}

const makeFileSink =
  (maxBytes?: number): MakeSink =>
  async (env: TestEnv) => {
    let dir = dirs.get(env.id);
    if (dir === undefined) {
      dir = mkdtempSync(path.join(os.tmpdir(), `engage-file-sink-${env.id}-`));
      dirs.set(env.id, dir);
    }
    const config = {
      ...env.config,
      FILE_SINK_DIR: dir,
      ...(maxBytes === undefined ? {} : { FILE_SINK_MAX_BYTES: maxBytes }),
    };
    const where = dir;
    return {
      sink: new FileSink({ config, log: pino({ level: 'silent' }) }),
      count: async () => countLines(where),
      teardown: async () => undefined,
    };
  };

sinkContractSuite('file (JSON lines, offsets in the state file)', makeFileSink());
sinkContractSuite('file (1 KiB segments: rotated on every few batches)', makeFileSink(1024));
