import { errorMessage } from '../core/errors.js';
import type { Sink, SinkHealth } from '../core/sink-contract.js';

/**
 * Asks a started sink's `health()` every `intervalMs` (the heartbeat's period), one call at a
 * time, and keeps the last answer for the heartbeat's synchronous `status()`: the runner publishes
 * it as `status.health`, which /health reads (a sink stage answering `ok: false` is a warning).
 * A sink without `health()` publishes nothing; a `health()` that throws despite its contract
 * reads as not ok, with the error.
 */

export interface HealthPoll {
  /** The last answer; undefined before the first one or for a sink without `health()`. */
  current(): SinkHealth | undefined;
  stop(): void;
}

export function pollSinkHealth(sink: Sink, intervalMs = 2000): HealthPoll {
  if (!sink.health) return { current: () => undefined, stop: () => undefined };
  let last: SinkHealth | undefined;
  let asking = false;
  let stopped = false;
  const ask = async () => {
    if (asking || stopped || !sink.health) return;
    asking = true;
    try {
      last = await sink.health();
    } catch (err) {
      last = { ok: false, detail: { error: errorMessage(err) } };
    } finally {
      asking = false;
    }
  };
  void ask();
  const timer = setInterval(() => void ask(), intervalMs);
  timer.unref();
  return {
    current: () => last,
    stop: () => {
      stopped = true;
      clearInterval(timer);
    },
  };
}
