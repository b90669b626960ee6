#!/usr/bin/env node
// The `engage` command: runs the TypeScript CLI through tsx (no build step). SIGINT and SIGTERM
// are forwarded to the CLI, which drains and commits; this wrapper exits with its code.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const loader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
// Detached: in its own process group, so a terminal's Ctrl-C reaches it once, through this wrapper.
const child = spawn(process.execPath, ['--import', loader, path.join(root, 'src/cli/main.ts'), ...process.argv.slice(2)], { stdio: 'inherit', detached: true });
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => child.kill(sig));
}
child.on('exit', (code, signal) => process.exit(code ?? (signal === 'SIGINT' ? 130 : 143)));
