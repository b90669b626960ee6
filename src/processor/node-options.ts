import type { Config } from '../config/load.js';

/**
 * The Node options a stream processor process is started with. The processor allocates a few KB
 * per event, and every scavenge copies the batches in flight; a larger young generation
 * (`--max-semi-space-size`, PROCESSOR_SEMI_SPACE_MB) means fewer scavenges for the same work
 * (measured in docs/processor.md). V8 reads the flag only at start, so whoever spawns the
 * processor passes it: the supervisor (`engage run`) and the processor benchmark use this.
 */
export function processorNodeOptions(config: Pick<Config, 'PROCESSOR_SEMI_SPACE_MB'>, base: string | undefined): string | undefined {
  if (config.PROCESSOR_SEMI_SPACE_MB === 0 || base?.includes('--max-semi-space-size')) return base;
  return [base, `--max-semi-space-size=${config.PROCESSOR_SEMI_SPACE_MB}`].filter(Boolean).join(' ');
}
