import { PipelineError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { retry } from '../runtime/retry.js';
import type { PgControl, SlotInfo } from './pg-control.js';

/**
 * One `engage cdc` per slot. The advisory lock is the mutex between CDC processes (released by the
 * server the moment the holder's connection ends, SIGKILL included); "slot active" covers any other
 * consumer of the slot and the few moments a killed predecessor's walsender needs to exit. Both wait
 * up to CDC_SLOT_WAIT_SECONDS, polling, then fail with a non-retriable SLOT_IN_USE naming the holder:
 * a second instance never streams beside the first.
 */

const POLL_MS = 500;

function policy(waitSeconds: number, signal: AbortSignal) {
  return {
    attempts: Math.max(1, Math.ceil((waitSeconds * 1000) / POLL_MS) + 1),
    baseMs: POLL_MS,
    maxMs: POLL_MS,
    jitter: 'none' as const,
    signal,
    shouldRetry: (err: unknown) => err instanceof PipelineError && err.code === 'SLOT_IN_USE',
  };
}

function fatal(err: unknown): never {
  if (err instanceof PipelineError && err.code === 'SLOT_IN_USE') {
    throw new PipelineError('SLOT_IN_USE', err.message, { retriable: false, details: err.details });
  }
  throw err;
}

export async function acquireSlot(
  control: PgControl,
  slot: string,
  waitSeconds: number,
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  let warned = false;
  await retry(
    async () => {
      const r = await control.tryLockSlot(slot);
      if (r.locked) return;
      const msg =
        `replication slot "${slot}" is in use by another engage cdc (PostgreSQL backend pid ${r.holderPid ?? '?'} holds its lock); ` +
        `waited ${waitSeconds} s. Stop the other instance, or give this one its own CDC_SLOT_NAME.`;
      if (!warned)
        log.warn({ holder_pid: r.holderPid }, `slot in use by another engage cdc; waiting up to ${waitSeconds} s`);
      warned = true;
      throw new PipelineError('SLOT_IN_USE', msg, { retriable: true, details: { holder_pid: r.holderPid } });
    },
    policy(waitSeconds, signal),
  ).catch(fatal);
}

/** The slot's state once no walsender holds it (null: no such slot). */
export async function waitSlotInactive(
  control: PgControl,
  slot: string,
  waitSeconds: number,
  log: Logger,
  signal: AbortSignal,
): Promise<SlotInfo | null> {
  let warned = false;
  return retry(
    async () => {
      const info = await control.slotInfo(slot);
      if (!info?.active) return info;
      if (!warned)
        log.warn(
          { active_pid: info.activePid },
          `replication slot is being read by another connection; waiting up to ${waitSeconds} s`,
        );
      warned = true;
      throw new PipelineError(
        'SLOT_IN_USE',
        `replication slot "${slot}" is being read by another connection (walsender pid ${info.activePid ?? '?'}); waited ${waitSeconds} s.`,
        { retriable: true },
      );
    },
    policy(waitSeconds, signal),
  ).catch(fatal);
}
