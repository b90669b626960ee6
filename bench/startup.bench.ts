import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createClient } from 'redis';
import { cliEntry } from '../bin/entry.mjs';
import { stageNodeFlags } from '../bin/node-flags.mjs';
import { loadConfig } from '../src/config/load.js';
import { childPids, loadAverage, rssMiB } from './lib/proc-stats.js';
import type { BenchResult } from './types.js';

/**
 * `npm run bench -- startup`: what running the compiled JavaScript (dist/, `npm run build`) saves
 * over the TypeScript through tsx, both ways interleaved (src, dist, src, dist …) on one machine:
 *
 * - `engage --help`: the CLI's load time alone, wall clock of the whole command;
 * - `engage sink redis` with HEALTH_PORT: wall clock from spawn to /health/ready answering 200
 *   (clients connected, partitions assigned: the consumer group's join is in it), and the RSS of
 *   the component's process and its children at that moment (tsx's esbuild service among them).
 *
 * The component runs exactly as the `engage` wrapper would start it (bin/entry.mjs, the stage's
 * Node flags) but without the wrapper, whose cost is the same both ways. Its consumer group and
 * Redis keys are its own (KAFKA_CLIENT_ID and REDIS_KEY_PREFIX `bench-startup`), removed after.
 * Builds dist/ first when it is not current. BENCH_STARTUP_RUNS (default 5) runs of each.
 */

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RUNS = Number(process.env.BENCH_STARTUP_RUNS ?? 5);
const PREFIX = 'bench-startup:';

function entryArgs(kind: 'src' | 'dist'): string[] {
  if (kind === 'dist') return [path.join(root, 'dist', 'cli', 'main.js')];
  const loader = pathToFileURL(createRequire(path.join(root, 'package.json')).resolve('tsx')).href;
  return ['--import', loader, path.join(root, 'src', 'cli', 'main.ts')];
}

function helpMs(kind: 'src' | 'dist'): number {
  const t0 = performance.now();
  const res = spawnSync(process.execPath, [...entryArgs(kind), '--help'], { stdio: 'ignore' });
  if (res.status !== 0) throw new Error(`engage --help (${kind}) exited ${res.status}`);
  return performance.now() - t0;
}

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

async function sinkToReady(kind: 'src' | 'dist'): Promise<{ ms: number; rss: number }> {
  const port = await freePort();
  const env = {
    ...process.env,
    HEALTH_PORT: String(port),
    KAFKA_CLIENT_ID: 'bench-startup',
    REDIS_KEY_PREFIX: PREFIX,
    LOG_LEVEL: 'warn',
  };
  const t0 = performance.now();
  const child = spawn(process.execPath, [...stageNodeFlags('sink', env), ...entryArgs(kind), 'sink', 'redis'], {
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const ok = await fetch(`http://127.0.0.1:${port}/health/ready`).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ok) break;
      if (child.exitCode !== null) throw new Error(`engage sink redis (${kind}) exited ${child.exitCode}`);
      if (Date.now() > deadline) throw new Error(`engage sink redis (${kind}) not ready within 60 s`);
      await new Promise((r) => setTimeout(r, 10));
    }
    const ms = performance.now() - t0;
    const pid = child.pid ?? 0;
    const rss = rssMiB(pid) + childPids(pid).reduce((s, p) => s + rssMiB(p), 0);
    return { ms, rss };
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const list = (xs: number[], digits = 0) => xs.map((x) => x.toFixed(digits)).join(' / ');

export async function run(): Promise<BenchResult[]> {
  if (cliEntry(root).kind !== 'dist') {
    const build = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
    if (build.status !== 0) throw new Error('npm run build failed');
  }
  const load0 = loadAverage();
  const m = {
    help: { src: [] as number[], dist: [] as number[] },
    ready: { src: [] as number[], dist: [] as number[] },
  };
  const rss = { src: [] as number[], dist: [] as number[] };
  for (let i = 0; i < RUNS; i++) {
    for (const kind of ['src', 'dist'] as const) {
      m.help[kind].push(helpMs(kind));
      const r = await sinkToReady(kind);
      m.ready[kind].push(r.ms);
      rss[kind].push(r.rss);
    }
  }
  const redis = createClient({ url: loadConfig().redisUrl });
  await redis.connect();
  for await (const keys of redis.scanIterator({ MATCH: `${PREFIX}*`, COUNT: 1000 }))
    if (keys.length > 0) await redis.unlink(keys);
  await redis.close();
  const note = `runs ${list(m.ready.dist)}; load ${load0.toFixed(1)}→${loadAverage().toFixed(1)}`;
  return [
    { name: 'engage --help, tsx (median)', value: median(m.help.src), unit: 'ms', note: `runs ${list(m.help.src)}` },
    { name: 'engage --help, dist (median)', value: median(m.help.dist), unit: 'ms', note: `runs ${list(m.help.dist)}` },
    {
      name: 'sink redis spawn → ready, tsx (median)',
      value: median(m.ready.src),
      unit: 'ms',
      note: `runs ${list(m.ready.src)}`,
    },
    { name: 'sink redis spawn → ready, dist (median)', value: median(m.ready.dist), unit: 'ms', note },
    {
      name: 'sink redis RSS at ready, tsx (median)',
      value: median(rss.src),
      unit: 'MiB',
      note: `runs ${list(rss.src)}`,
    },
    {
      name: 'sink redis RSS at ready, dist (median)',
      value: median(rss.dist),
      unit: 'MiB',
      note: `runs ${list(rss.dist)}`,
    },
  ];
}
