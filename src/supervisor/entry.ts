import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** How to start `engage <args>` as a child process: this Node, tsx's loader, the CLI entry. */
export function engageEntry(): { node: string; args: string[] } {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const loader = createRequire(import.meta.url).resolve('tsx');
  return {
    node: process.execPath,
    args: ['--import', pathToFileURL(loader).href, path.join(here, '..', 'cli', 'main.ts')],
  };
}
