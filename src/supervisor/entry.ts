import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cliEntry } from '../../bin/entry.mjs';

/**
 * How to start `engage <args>` as a child process: this Node and the CLI's entry, chosen as the
 * `engage` command chooses it (bin/entry.mjs): the compiled dist/cli/main.js when built and current,
 * else src/cli/main.ts through tsx's loader.
 */
export function engageEntry(): { node: string; args: string[] } {
  // src/supervisor/ and dist/supervisor/ are both two levels below the package's root.
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  return { node: process.execPath, args: cliEntry(root).args };
}
