import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';

/**
 * The BigQuery fakes as their own process (bigquery-fakes-process.ts), and its commands: one line
 * out, one JSON line back, in order.
 */

const here = path.dirname(fileURLToPath(import.meta.url));

export class FakesProcess {
  private readonly waiting: Array<(line: string) => void> = [];

  private constructor(
    private readonly child: ChildProcessByStdio<Writable, Readable, null>,
    lines: Interface,
    readonly rest: string,
    readonly storage: string,
  ) {
    lines.on('line', (line) => this.waiting.shift()?.(line));
  }

  static async start(): Promise<FakesProcess> {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'bigquery-fakes-process.ts')], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const lines = createInterface({ input: child.stdout });
    const [first] = (await once(lines, 'line')) as [string];
    const urls = JSON.parse(first) as { rest: string; storage: string };
    return new FakesProcess(child, lines, urls.rest, urls.storage);
  }

  /** Sends `command` and resolves with the process's answer. */
  ask<T extends object>(command: string): Promise<T> {
    return new Promise<T>((resolve) => {
      this.waiting.push((line) => resolve(JSON.parse(line) as T));
      this.child.stdin.write(`${command}\n`);
    });
  }

  /** The fakes' CPU time so far, in seconds. */
  async cpuSeconds(): Promise<number> {
    return (await this.ask<{ cpuUs: number }>('cpu')).cpuUs / 1e6;
  }

  async stop(): Promise<void> {
    this.child.stdin.end();
    await once(this.child, 'exit');
  }
}
