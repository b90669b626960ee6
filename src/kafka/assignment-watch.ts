import type { Logger } from '../core/logger.js';

/**
 * Notices a consumer-group member that has silently stopped consuming: its group membership is
 * not settled ("steady", in librdkafka's words) although its group coordinator is reachable, or
 * one of its rebalance events has waited unapplied. Such a member looks alive (its process runs,
 * its heartbeat beats) while nothing moves; librdkafka has been seen to stay that way after a
 * broker restart ("assignment lost", then no rejoin).
 *
 * It reads the member's own view of its group, from librdkafka's statistics (`cgrp`: the
 * coordinator state and the join state), not the admin API: admin requests that time out while
 * the broker is away have crashed the client (an assertion in librdkafka 2.15's request timer),
 * and the member's own view is what tells a stuck member from a spare one (a member of a group
 * with more members than partitions is steady with nothing assigned).
 *
 * Contract:
 * - `check()` runs every `intervalMs` (and can be called directly).
 * - Starvation must be seen by consecutive checks with the coordinator up: a check that finds
 *   the coordinator away (the broker down or frozen), no recent statistics, or the membership
 *   steady with no rebalance event pending resets the clock, since an outage is waited out, not
 *   punished.
 * - After `boundMs / 2` of starvation `status()` turns `ok: false` (the component reports itself
 *   unhealthy); after `boundMs`, `onStarved` is called once with the reason (the owner then exits
 *   so its supervisor restarts it with a fresh client).
 * - A rebalance event left unapplied is starvation too (timed from the first check that saw it
 *   with the coordinator up).
 */

/** The member's view of its group (librdkafka statistics `cgrp`), with when it was read. */
export interface GroupView {
  /** Coordinator state: `up` once the coordinator is known and connected. */
  state: string;
  /** Join state: `steady` once the membership and its assignment are settled. */
  joinState: string;
  assignmentSize: number;
  /** Date.now() when the statistics arrived. */
  at: number;
}

export interface AssignmentWatchOptions {
  groupId: string;
  topic: string;
  /** The latest view of the group, or null before the first statistics. */
  group(): GroupView | null;
  /** How long the oldest rebalance event received and not yet applied has waited (0: none). */
  rebalanceWaitMs(): number;
  boundMs: number;
  intervalMs?: number;
  /** Statistics older than this are no evidence either way (default 30 s). */
  staleMs?: number;
  log: Logger;
  onStarved(reason: string): void;
  now?: () => number;
}

export interface AssignmentStatus {
  ok: boolean;
  /** Why the member is not ok, or what it last saw. */
  reason: string | null;
  /** Since when (ISO) the member has been starving, or null. */
  starving_since: string | null;
}

export class AssignmentWatch {
  private since: number | null = null;
  private reason: string | null = null;
  private fired = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(private readonly opts: AssignmentWatchOptions) {
    this.now = opts.now ?? Date.now;
  }

  start(): void {
    this.timer = setInterval(() => this.check(), this.opts.intervalMs ?? 5_000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  status(): AssignmentStatus {
    const starving = this.since !== null && this.now() - this.since >= this.opts.boundMs / 2;
    return { ok: !starving, reason: starving ? this.reason : null, starving_since: this.since === null ? null : new Date(this.since).toISOString() };
  }

  check(): void {
    if (this.fired) return;
    const g = this.opts.group();
    // The coordinator away or no recent statistics: an outage (a revoke waiting for a transaction
    // to abort included) or no evidence, which is waited out.
    if (g === null || this.now() - g.at > (this.opts.staleMs ?? 30_000) || g.state !== 'up') return this.clear();
    const waited = this.opts.rebalanceWaitMs();
    if (waited > 0) return this.starve(`a rebalance event has waited ${Math.round(waited / 1000)} s without being applied`, this.now());
    if (g.joinState === 'steady') return this.clear();
    this.starve(`its membership of group ${this.opts.groupId} is "${g.joinState}", not steady, with the coordinator up (${g.assignmentSize} partitions of ${this.opts.topic} assigned)`, this.now());
  }

  private clear(): void {
    this.since = null;
    this.reason = null;
  }

  private starve(reason: string, from: number): void {
    this.since ??= from;
    this.reason = reason;
    const starvedMs = this.now() - this.since;
    if (starvedMs < this.opts.boundMs) return;
    this.fired = true;
    this.opts.log.error({ group: this.opts.groupId, topic: this.opts.topic, starvedMs }, `consumer starved: ${reason}`);
    this.opts.onStarved(`${reason} (for ${Math.round(starvedMs / 1000)} s)`);
  }
}
