/**
 * A command never outlives the process that launched it. Its launchers (bin/engage.mjs, and
 * `engage run` for each component: src/supervisor/child.ts) start the CLI with an IPC channel and
 * never send on it: the kernel closes the launcher's end whenever the launcher ends, SIGKILL and
 * the OOM killer included, so the channel's closing is the launcher's death, with no polling and no
 * pid that could be reused. The CLI then stops as on SIGTERM (a component drains and commits,
 * `engage run` stops its components) and, should that take longer than `deadlineMs`, exits hard.
 *
 * A CLI started without the channel (a shell, systemd, a container's entry point) is not watched:
 * its manager owns its lifetime.
 */

/** How long a command whose launcher is gone may take to stop before it is killed. */
export const LAUNCHER_GONE_DEADLINE_MS = 30_000;

export interface LauncherWatchOptions {
  deadlineMs?: number;
  /** Told once the launcher is gone, before the stop begins (the CLI prints why it stops). */
  onGone?: (launcherPid: number) => void;
}

/**
 * Watches the launcher through the process's IPC channel; does nothing when there is none. The
 * channel does not keep the process alive. Returns whether a launcher is watched.
 */
export function watchLauncher(opts: LauncherWatchOptions = {}): boolean {
  const channel = process.channel;
  if (!channel) return false;
  // process.ppid is read once at start-up: after the launcher's death it would still name it.
  const launcherPid = process.ppid;
  process.once('disconnect', () => {
    // The launcher may have been the reader of this process's stdout and stderr (engage run pipes
    // them to its log files): a write to them now fails with EPIPE, which must not end the drain.
    process.stdout.on('error', () => undefined);
    process.stderr.on('error', () => undefined);
    opts.onGone?.(launcherPid);
    // SIGKILL, not process.exit: native Kafka clients can hold an exit up while they close.
    setTimeout(() => process.kill(process.pid, 'SIGKILL'), opts.deadlineMs ?? LAUNCHER_GONE_DEADLINE_MS).unref();
    process.kill(process.pid, 'SIGTERM');
  });
  // After the listener: Node references the channel for each 'disconnect' listener added.
  channel.unref();
  return true;
}
