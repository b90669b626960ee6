/**
 * The Node flags the `engage` wrapper (bin/engage.mjs) starts a command with.
 *
 * The long-running stages that allocate per event get the young generation `engage run` gives
 * them (src/runtime/node-options.ts, docs/operations.md "Sizing"): V8 reads
 * `--max-semi-space-size` only when the process starts, so the CLI cannot set it for itself.
 * `PROCESSOR_SEMI_SPACE_MB` applies to `engage process`, `SINK_SEMI_SPACE_MB` to `engage sink`
 * (0 = V8's default). The default is the config schema's (test/runtime/node-flags.test.ts keeps
 * them equal). A value that is not a whole number is left out here: the CLI's configuration check
 * then reports it. NODE_OPTIONS that already set the flag win.
 */

export const SEMI_SPACE_DEFAULT_MB = 64;

const SEMI_SPACE_VARIABLE = new Map([
  ['process', 'PROCESSOR_SEMI_SPACE_MB'],
  ['sink', 'SINK_SEMI_SPACE_MB'],
]);

/**
 * @param {string | undefined} command the CLI command (`process`, `sink`, …)
 * @param {Record<string, string | undefined>} env the environment the command will see
 * @returns {string[]} Node flags to put before the CLI's entry
 */
export function stageNodeFlags(command, env) {
  const variable = command === undefined ? undefined : SEMI_SPACE_VARIABLE.get(command);
  if (variable === undefined || (env.NODE_OPTIONS ?? '').includes('--max-semi-space-size')) return [];
  const raw = (env[variable] ?? String(SEMI_SPACE_DEFAULT_MB)).trim();
  if (!/^\d+$/.test(raw) || Number(raw) === 0) return [];
  return [`--max-semi-space-size=${Number(raw)}`];
}
