import { rmSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../../src/config/load.js';
import { stackDown } from '../../src/stack/stack.js';
import { readStackState } from '../../src/stack/state.js';

/**
 * Stops a test's own private stack and removes everything it wrote: its STACK_DIR and, when
 * PostgreSQL had to run from a /var/tmp fallback folder (the stack folder's parent was not
 * traversable by the postgres user, e.g. a 0700 temp folder), that folder too.
 */
export async function removePrivateStack(config: Config, stackDir: string): Promise<void> {
  const pgDir = readStackState(stackDir)?.services.postgres?.dataDir;
  await stackDown(config).catch(() => undefined);
  if (pgDir?.startsWith('/var/tmp/engage-stack-')) rmSync(path.dirname(path.dirname(pgDir)), { recursive: true, force: true });
  rmSync(stackDir, { recursive: true, force: true });
}
