import { createInterface } from 'node:readline';
import { DuckDBInstance } from '@duckdb/node-api';
import { sleep } from '../helpers/wait.js';

/**
 * Another process holding the warehouse's DuckDB file (the fault matrix's row "DuckDB file locked"):
 * `node --import tsx hold-duckdb-lock.ts <file> <holdMs>`. It loads DuckDB, prints `ready`, and on
 * the line `go` on stdin opens the file read-write — retrying for up to 15 s while the process that
 * held it is dying — prints `locked`, keeps it `holdMs`, closes it and prints `released` (exit 0);
 * `never-locked <error>` and exit 1 when it could not open the file in time.
 */

const [file, holdArg] = process.argv.slice(2);
const holdMs = Number(holdArg);
if (!file || !Number.isFinite(holdMs)) {
  process.stderr.write('usage: hold-duckdb-lock.ts <file> <holdMs>\n');
  process.exit(2);
}

async function open(): Promise<DuckDBInstance> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      return await DuckDBInstance.create(file as string, { access_mode: 'READ_WRITE' });
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(20);
    }
  }
}

process.stdout.write('ready\n');
const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (line.trim() !== 'go') continue;
  try {
    const db = await open();
    process.stdout.write(`locked ${Date.now()}\n`);
    // The fault's duration: the file stays locked this long.
    await sleep(holdMs);
    db.closeSync();
    process.stdout.write(`released ${Date.now()}\n`);
    process.exit(0);
  } catch (err) {
    process.stdout.write(`never-locked ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
