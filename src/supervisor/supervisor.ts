import type { Config } from '../config/load.js';
import { semiSpaceNodeOptions } from '../runtime/node-options.js';
import { getSinkFactory, sinkStage } from '../sinks/registry.js';
import { engageEntry } from './entry.js';
import { SupervisedChild, type ChildSpec, type ChildStatus, type EndedHandler } from './child.js';
import { CRASH_WINDOW_MS } from './restart-policy.js';
import { formatFigures, type StageFigures } from './run-figures.js';

/**
 * `engage run`: every component as its own child process in one supervised tree, for a laptop.
 * Each component is the same command a production deployment runs separately, so a crash of one
 * (restarted with backoff, or left down after a fatal error: restart-policy.ts) never takes the
 * others down.
 */

export interface RunOptions {
  generator: boolean;
  rate: number;
  receiver: boolean;
  api: boolean;
  /** Registered sink names (src/sinks/registry.ts); one the sink's `runEnv` cannot place is left out. */
  sinks: string[];
}

export function componentSpecs(config: Config, opts: RunOptions): ChildSpec[] {
  const specs: ChildSpec[] = [];
  const receiverUrl = opts.receiver ? `http://127.0.0.1:${config.EXTERNAL_RECEIVER_PORT}/events` : undefined;
  if (opts.receiver)
    specs.push({
      name: 'external-receiver',
      args: ['external-receiver', '--port', String(config.EXTERNAL_RECEIVER_PORT)],
    });
  specs.push({ name: 'cdc', args: ['cdc'] });
  const nodeOptions = (mb: number): NodeJS.ProcessEnv => {
    const options = semiSpaceNodeOptions(mb, process.env.NODE_OPTIONS);
    return options === undefined ? {} : { NODE_OPTIONS: options };
  };
  specs.push({
    name: 'processor',
    args: ['process', '--mode', 'stream'],
    env: nodeOptions(config.PROCESSOR_SEMI_SPACE_MB),
  });
  for (const sink of opts.sinks) {
    const factory = getSinkFactory(sink);
    const own = factory.operations.runEnv
      ? factory.operations.runEnv(config, receiverUrl === undefined ? {} : { receiverUrl })
      : {};
    if (own === null) continue;
    specs.push({
      name: sinkStage(factory.name),
      args: ['sink', factory.name],
      env: { ...nodeOptions(config.SINK_SEMI_SPACE_MB), ...own },
    });
  }
  if (opts.api) specs.push({ name: 'api', args: ['api'] });
  if (opts.generator)
    specs.push({ name: 'generator', args: ['generate', '--mode', 'continuous', '--rate', String(opts.rate)] });
  return specs;
}

/** Name prefixes in stop order (upstream first); names not listed stop last. */
const STOP_ORDER = ['generator', 'cdc', 'processor', 'sink-', 'api', 'external-receiver', ''];

/** The components' names in the order `Supervisor.stop` stops them (stable within a rank). */
export function stopOrder(names: readonly string[]): string[] {
  const rank = (name: string) => STOP_ORDER.findIndex((prefix) => name.startsWith(prefix));
  return [...names].sort((a, b) => rank(a) - rank(b));
}

export class Supervisor {
  readonly children: SupervisedChild[];

  /** `env` is added to every child's environment (a spec's own env wins); `onEnded` hears of each unexpected exit. */
  constructor(specs: ChildSpec[], logDir: string, env: NodeJS.ProcessEnv = {}, onEnded?: EndedHandler) {
    const entry = engageEntry();
    this.children = specs.map(
      (s) => new SupervisedChild({ ...s, env: { ...env, ...s.env } }, entry, logDir, undefined, onEnded),
    );
  }

  start(): void {
    for (const c of this.children) c.start();
  }

  status(): ChildStatus[] {
    return this.children.map((c) => c.status());
  }

  child(name: string): SupervisedChild | undefined {
    return this.children.find((c) => c.status().name === name);
  }

  /**
   * Stops one component after another, upstream first (the generator, the CDC, the processor, then
   * the sinks, the API, the receiver last): each stage drains and commits before the stages it
   * feeds are stopped, so the sinks take in what the processor committed while it stopped instead
   * of leaving it in Kafka until the next start.
   */
  async stop(): Promise<void> {
    const byName = new Map(this.children.map((c) => [c.status().name, c]));
    for (const name of stopOrder([...byName.keys()])) await byName.get(name)?.stop();
  }
}

/**
 * One line per component: state, pid, time in that state, restarts, a crash loop or why it is not
 * restarted; a running stage's figures (run-figures.ts) after it.
 */
export function formatStatus(
  rows: ChildStatus[],
  now = Date.now(),
  figures: ReadonlyMap<string, StageFigures> = new Map(),
): string {
  return rows
    .map((r) => {
      const age = `${Math.round((now - r.since) / 1000)}s`;
      const f = r.state === 'running' ? figures.get(r.name) : undefined;
      const note = r.notRestarted
        ? `  not restarted: ${r.notRestarted}`
        : r.crashLoop
          ? `  crash loop: ${r.crashes} crashes in ${CRASH_WINDOW_MS / 60_000} min`
          : '';
      const line = `  ${r.name.padEnd(18)} ${r.state.padEnd(9)} pid ${String(r.pid ?? '-').padEnd(8)} ${age.padStart(6)}  restarts ${r.restarts}${r.lastExit ? `  last ${r.lastExit}` : ''}${note}`;
      return f ? `${line}   ${formatFigures(f)}` : line;
    })
    .join('\n');
}
