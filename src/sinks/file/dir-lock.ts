import { promises as fs } from 'node:fs';
import path from 'node:path';
import { PipelineError } from '../../core/errors.js';
import { processAlive } from '../../runtime/lifecycle.js';

/**
 * One file sink process per directory: `lock` holds the pid of the process appending there. A
 * lock whose process is gone (a crash, a kill) is taken over; one held by a live process is a
 * retriable error, so a second worker waits for the first to stop instead of interleaving its
 * appends (the file sink does not scale out: a state file per directory, one writer).
 */

export const LOCK_FILE = 'lock';

export async function acquireDirLock(dir: string): Promise<void> {
  const file = path.join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      await fs.writeFile(file, String(process.pid), { flag: 'wx' });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = Number((await fs.readFile(file, 'utf8').catch(() => '')).trim());
    // The same process re-opening its directory (a sink re-created after a failure) keeps the lock.
    if (holder === process.pid) return;
    if (Number.isInteger(holder) && holder > 0 && processAlive(holder)) {
      throw new PipelineError(
        'SINK_WRITE_FAILED',
        `${dir} is in use by another file sink (pid ${holder}); waiting for it to stop`,
        { retriable: true, details: { dir, pid: holder } },
      );
    }
    await fs.rm(file, { force: true });
  }
  throw new PipelineError('SINK_WRITE_FAILED', `could not take the lock of ${dir}`, {
    retriable: true,
    details: { dir },
  });
}

export async function releaseDirLock(dir: string): Promise<void> {
  const file = path.join(dir, LOCK_FILE);
  const holder = Number((await fs.readFile(file, 'utf8').catch(() => '')).trim());
  if (holder === process.pid) await fs.rm(file, { force: true });
}
