/**
 * How a process of the pipeline ends once a native call of it will never return.
 *
 * Node's exit waits for libuv's worker threads; a native call that never answers (a librdkafka
 * transactional call past its own timeout: src/kafka/txn-call.ts) keeps one of them, so
 * `process.exit` would then block for good (measured on Node 20 with a worker thread parked in a
 * blocking call: `process.exit` and `process.reallyExit` both still waiting after 20 s). Once such a
 * call is noted, `exitProcess` ends the process with SIGKILL instead: the `engage` launcher then
 * exits 143, which `engage run`, systemd and Kubernetes restart like any crash.
 */

let stuck: string | undefined;

/** Notes a native call that will never return (the first one is kept for the exit message). */
export function noteStuckNativeCall(what: string): void {
  stuck ??= what;
}

/** Ends the process with `code`, or with SIGKILL when a native call is stuck (see above). */
export function exitProcess(code: number): void {
  if (stuck !== undefined) {
    process.stderr.write(
      `engage: ${stuck} never returned; ending the process with SIGKILL (exit code ${code} intended)\n`,
    );
    process.kill(process.pid, 'SIGKILL');
  }
  process.exit(code);
}
