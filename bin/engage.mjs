#!/usr/bin/env node
// The `engage` command: runs the CLI — the compiled JavaScript of dist/ when built and current, else
// the TypeScript through tsx (no build step; bin/entry.mjs decides) — with the Node flags of
// bin/node-flags.mjs (`.env` is read first, as the CLI reads it). SIGINT, SIGTERM and SIGHUP are
// forwarded to the CLI, which drains and commits; this wrapper exits with its code. The CLI never
// outlives this wrapper: it stops by itself (drains, then exits) once the IPC channel opened here
// closes, which happens however the wrapper ends, SIGKILL included (src/cli/launcher-watch.ts).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import dotenv from 'dotenv';
import { cliEntry } from './entry.mjs';
import { stageNodeFlags } from './node-flags.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
dotenv.config({ path: path.join(process.cwd(), '.env'), quiet: true });
const args = process.argv.slice(2);
// Detached: in its own process group, so a terminal's Ctrl-C reaches it once, through this wrapper.
// 'ipc': the channel whose closing tells the CLI that this wrapper is gone; nothing is sent on it.
const child = spawn(process.execPath, [...stageNodeFlags(args[0], process.env), ...cliEntry(root).args, ...args], {
  stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
  detached: true,
});
// A signal often arrives twice (to this process and to its group): forward it once per second,
// so the CLI's "second signal exits at once" stays for a person who insists.
const lastForwarded = new Map();
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    if (Date.now() - (lastForwarded.get(sig) ?? 0) < 1000) return;
    lastForwarded.set(sig, Date.now());
    child.kill(sig);
  });
}
child.on('exit', (code, signal) => process.exit(code ?? (signal === 'SIGINT' ? 130 : 143)));
