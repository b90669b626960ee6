/**
 * Which code the `engage` command runs (bin/engage.mjs; src/supervisor/entry.ts makes the same
 * choice for `engage run`'s children): the compiled JavaScript in dist/ (`npm run build`) when it is
 * there and current, else the TypeScript in src/ through tsx, so a clone runs with no build step.
 *
 * dist/ is current when no file or folder under src/ is newer than its build stamp (dist/.build-stamp, written
 * by scripts/copy-assets.mjs at the end of the build): an edit after a build runs the edited
 * TypeScript, never stale JavaScript. An installed package has no src/: dist/ is all there is.
 * tsx is resolved only on the TypeScript path (an installed package has no devDependencies).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/** The newest modification time (ms) of `dir`, its folders and its files (a folder's changes when a file is added or removed). */
function newestMtime(dir) {
  let newest = statSync(dir).mtimeMs;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * @param {string} root the package's root (the folder holding bin/, src/ and dist/)
 * @returns {{ kind: 'dist' | 'src', args: string[] }} Node arguments that load the CLI's entry
 */
export function cliEntry(root) {
  const compiled = path.join(root, 'dist', 'cli', 'main.js');
  const stamp = path.join(root, 'dist', '.build-stamp');
  const sources = path.join(root, 'src');
  if (existsSync(compiled) && existsSync(stamp)) {
    if (!existsSync(sources) || newestMtime(sources) <= statSync(stamp).mtimeMs)
      return { kind: 'dist', args: [compiled] };
  }
  const loader = pathToFileURL(createRequire(path.join(root, 'package.json')).resolve('tsx')).href;
  return { kind: 'src', args: ['--import', loader, path.join(sources, 'cli', 'main.ts')] };
}
