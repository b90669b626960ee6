import type { Logger } from '../core/logger.js';

/**
 * Notices a consumer-group member that has silently stopped consuming: it holds no partition and
 * its membership does not settle although the broker is there, or it is settled with nothing
 * while partitions of its topic have no member at all, or one of its rebalance events has waited
 * unapplied. Such a member looks alive (its process runs, its heartbeat beats) while nothing
 * moves; librdkafka has been seen to stay that way after a broker restart or freeze ("assignment
 * lost", then no rejoin for minutes).
 *
 * Evidence, cheapest first: the partitions the member holds, its own view of its group from
 * librdkafka's statistics (`cgrp`: coordinator state, join state), a TCP probe of the broker, and
 * — only for a member settled with nothing while the coordinator answers — the group's
 * description (which partitions any member holds). Admin requests are kept to that case: admin
 * requests timing out while the broker was away have crashed the client (an assertion in
 * librdkafka 2.15's request timer).
 *
 * Contract:
 * - `check()` runs every `intervalMs` (and can be called directly).
 * - Starvation must be seen by consecutive checks: a check that finds the member holding its
 *   partitions, the broker refusing connections (down: an outage is waited out), or a settled
 *   member whose group leaves no partition without a member, resets the clock.
 * - After `boundMs / 2` of starvation `status()` turns `ok: false` (the component reports itself
 *   unhealthy); after `boundMs`, `onStarved` is called once with the reason (the owner then exits
 *   so its supervisor restarts it with fresh clients). A broker frozen for longer than `boundMs`
 *   therefore restarts its consumers, which then wait for it like for any outage.
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

/** The group view in librdkafka's statistics JSON (`cgrp`), read at `at`; null when absent or unreadable. */
export function groupViewOf(statsJson: string, at: number): GroupView | null {
  try {
    const cgrp = (
      JSON.parse(statsJson) as { cgrp?: { state?: unknown; join_state?: unknown; assignment_size?: unknown } }
    ).cgrp;
    if (cgrp === undefined) return null;
    return {
      state: String(cgrp.state),
      joinState: String(cgrp.join_state),
      assignmentSize: Number(cgrp.assignment_size ?? 0),
      at,
    };
  } catch {
    return null;
  }
}

export interface AssignmentWatchOptions {
  groupId: string;
  topic: string;
  /** Partitions this member holds now. */
  held(): readonly number[];
  /** The latest view of the group, or null before the first statistics. */
  group(): GroupView | null;
  /** How long the oldest rebalance event received and not yet applied has waited (0: none). */
  rebalanceWaitMs(): number;
  /** Whether the broker accepts connections (false: down, an outage to wait out). */
  brokerReachable(): Promise<boolean>;
  /** Partitions of the topic that no member of the group holds; null when unknown. */
  unheldPartitions(): Promise<number[] | null>;
  boundMs: number;
  intervalMs?: number;
  /** Statistics older than this are no evidence of a settled membership (default 30 s). */
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
  private checking = false;
  private readonly now: () => number;

  constructor(private readonly opts: AssignmentWatchOptions) {
    this.now = opts.now ?? Date.now;
  }

  start(): void {
    this.timer = setInterval(() => void this.check(), this.opts.intervalMs ?? 5_000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  status(): AssignmentStatus {
    const starving = this.since !== null && this.now() - this.since >= this.opts.boundMs / 2;
    return {
      ok: !starving,
      reason: starving ? this.reason : null,
      starving_since: this.since === null ? null : new Date(this.since).toISOString(),
    };
  }

  async check(): Promise<void> {
    if (this.fired || this.checking) return;
    this.checking = true;
    try {
      await this.judge();
    } finally {
      this.checking = false;
    }
  }

  private async judge(): Promise<void> {
    const waited = this.opts.rebalanceWaitMs();
    const held = this.opts.held().length;
    if (held > 0 && waited === 0) return this.clear();
    if (!(await this.opts.brokerReachable())) return this.clear();
    if (waited > 0)
      return this.starve(
        `a rebalance event has waited ${Math.round(waited / 1000)} s without being applied`,
        this.now(),
      );
    const g = this.opts.group();
    const fresh = g !== null && this.now() - g.at <= (this.opts.staleMs ?? 30_000);
    if (fresh && g.state === 'up' && g.joinState === 'steady') {
      // Settled with nothing: a spare member of a group larger than the topic, or stuck.
      const unheld = await this.opts.unheldPartitions();
      if (unheld === null || unheld.length === 0) return this.clear();
      return this.starve(
        `holds no partition, settled in group ${this.opts.groupId}, while partitions ${unheld.join(', ')} of ${this.opts.topic} have no member`,
        this.now(),
      );
    }
    const view =
      g === null
        ? 'no statistics yet'
        : fresh
          ? `coordinator "${g.state}", membership "${g.joinState}"`
          : `no statistics for ${Math.round((this.now() - g.at) / 1000)} s`;
    this.starve(
      `holds no partition of ${this.opts.topic} and its membership of group ${this.opts.groupId} does not settle (${view}) although the broker accepts connections`,
      this.now(),
    );
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
