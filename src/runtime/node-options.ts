/**
 * The Node options a pipeline process is started with. The processor and the sinks allocate a few
 * KB per event and hold whole batches of them while they wait (a transaction, a sink write); every
 * scavenge copies what is live, so a larger young generation (`--max-semi-space-size`) means fewer
 * scavenges for the same work — measured in docs/processor.md (PROCESSOR_SEMI_SPACE_MB) and
 * docs/sinks.md (SINK_SEMI_SPACE_MB). V8 reads the flag only at start, so whoever spawns the process
 * passes it: the supervisor (`engage run`) and the benchmarks use this; the `engage` command passes
 * it to `engage process` and `engage sink` itself (bin/node-flags.mjs, plain JavaScript).
 *
 * Returns `base` with the flag added (unchanged when `mb` is 0 or `base` already sets it).
 */
export function semiSpaceNodeOptions(mb: number, base: string | undefined): string | undefined {
  if (mb === 0 || base?.includes('--max-semi-space-size')) return base;
  return [base, `--max-semi-space-size=${mb}`].filter(Boolean).join(' ');
}
