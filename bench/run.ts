import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadConfig } from '../src/config/load.js';
import { stackUp } from '../src/stack/stack.js';
import type { BenchModule, BenchResult } from './types.js';

/**
 * `npm run bench [-- <substring>…]`: brings the stack up, runs every `bench/*.bench.ts` (or those
 * whose name contains one of the substrings) one after another, prints each figure, and writes
 * them with the machine and date to bench-output/results.json (docs/benchmarks.md records them).
 */

const here = path.dirname(fileURLToPath(import.meta.url));
const filters = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (files.length === 0) {
  console.error('bench: no benchmark matched');
  process.exit(1);
}

const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.platform()} ${os.release()}, Node ${process.version}`;
console.log(`machine: ${machine}\ndate: ${new Date().toISOString()}\n`);

const t0 = Date.now();
const status = await stackUp(loadConfig());
const stackMs = Date.now() - t0;
console.log(
  `stack up (already-running services are reused): ${(stackMs / 1000).toFixed(1)} s  [${status.map((s) => s.name).join(', ')}]\n`,
);

const all: Array<BenchResult & { bench: string }> = [];
for (const file of files) {
  const name = file.replace(/\.bench\.ts$/, '');
  console.log(`── ${name}`);
  const mod = (await import(pathToFileURL(path.join(here, file)).href)) as BenchModule;
  try {
    const results = await mod.run();
    for (const r of results) {
      console.log(
        `   ${r.name.padEnd(58)} ${formatValue(r.value).padStart(12)} ${r.unit}${r.note ? `   (${r.note})` : ''}`,
      );
      all.push({ ...r, bench: name });
    }
  } catch (err) {
    console.log(`   FAILED: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  }
}

const out = path.join(here, '..', 'bench-output');
mkdirSync(out, { recursive: true });
writeFileSync(
  path.join(out, 'results.json'),
  `${JSON.stringify({ machine, date: new Date().toISOString(), results: all }, null, 2)}\n`,
);
console.log(`\nwritten to bench-output/results.json`);
process.exit(process.exitCode ?? 0);

function formatValue(v: number): string {
  return Number.isInteger(v) ? v.toLocaleString('en-US') : v.toLocaleString('en-US', { maximumFractionDigits: 2 });
}
