import { KafkaJS } from '@confluentinc/kafka-javascript';
import { errorMessage } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Admin } from './client.js';

/**
 * Notices a consumer-group member that has silently stopped consuming: it holds no partition
 * while partitions of its topic with a backlog are held by no member of its group, or one of its
 * rebalance events has waited unapplied. Such a member looks alive (its process runs, its
 * heartbeat beats) while nothing moves; librdkafka has been seen to stay that way after a broker
 * restart ("assignment lost", then no rejoin).
 *
 * Contract:
 * - `check()` runs every `intervalMs` (and can be called directly). A member that holds a
 *   partition is fine. Otherwise the group is described and its committed offsets compared with
 *   the topic's high watermarks; a partition with lag that no member holds is *orphaned*.
 * - Starvation must be seen by consecutive successful checks: a check whose admin calls fail (the
 *   broker down or frozen) or that finds the group rebalancing resets the clock, since an outage
 *   is waited out, not punished.
 * - After `boundMs / 2` of starvation `status()` turns `ok: false` (the component reports itself
 *   unhealthy); after `boundMs`, `onStarved` is called once with the reason (the owner then exits
 *   so its supervisor restarts it with a fresh client).
 * - A rebalance event unapplied for longer than `boundMs` is starvation too, with no admin call.
 */

export interface AssignmentWatchOptions {
  admin: Pick<Admin, 'describeGroups' | 'fetchOffsets' | 'fetchTopicOffsets'>;
  groupId: string;
  topic: string;
  /** Partitions this member holds now. */
  held(): number[];
  /** How long the oldest rebalance event received and not yet applied has waited (0: none). */
  rebalanceWaitMs(): number;
  boundMs: number;
  intervalMs?: number;
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

/** Group states in which the members' assignments are settled (KIP-848 numbering of the client). */
const SETTLED_STATES = new Set([3 /* STABLE */, 5 /* EMPTY */]);
const ADMIN_TIMEOUT_MS = 5000;

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
    this.timer = setInterval(() => void this.check(), this.opts.intervalMs ?? 10_000);
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

  async check(): Promise<void> {
    if (this.checking || this.fired) return;
    this.checking = true;
    try {
      const waited = this.opts.rebalanceWaitMs();
      if (waited > this.opts.boundMs) {
        this.starve(`a rebalance event has waited ${Math.round(waited / 1000)} s without being applied`, this.now() - waited);
        return;
      }
      if (this.opts.held().length > 0) return this.clear();
      const orphaned = await this.orphanedWithLag();
      if (orphaned === null || orphaned.length === 0) return this.clear();
      this.starve(`holds no partition while partitions ${orphaned.join(', ')} of ${this.opts.topic} have lag and no member of group ${this.opts.groupId}`, this.now());
    } finally {
      this.checking = false;
    }
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

  /** Partitions with lag that no member holds; null when unknown (admin failed, group rebalancing). */
  private async orphanedWithLag(): Promise<number[] | null> {
    const { admin, groupId, topic } = this.opts;
    try {
      const described = await admin.describeGroups([groupId], { timeout: ADMIN_TIMEOUT_MS });
      const group = described.groups.find((g) => g.groupId === groupId);
      if (group === undefined || group.error || !SETTLED_STATES.has(group.state as number)) return null;
      const heldByMembers = new Set<number>();
      for (const m of group.members) for (const tp of m.assignment?.topicPartitions ?? []) if (tp.topic === topic) heldByMembers.add(tp.partition);
      const watermarks = await admin.fetchTopicOffsets(topic, { timeout: ADMIN_TIMEOUT_MS, isolationLevel: KafkaJS.IsolationLevel.READ_COMMITTED });
      const committed = new Map<number, bigint>();
      for (const t of await admin.fetchOffsets({ groupId, topics: [topic], timeout: ADMIN_TIMEOUT_MS })) {
        if (t.topic !== topic) continue;
        for (const p of t.partitions) if (/^\d+$/.test(p.offset)) committed.set(p.partition, BigInt(p.offset));
      }
      return watermarks
        .filter((w) => !heldByMembers.has(w.partition) && BigInt(w.high) > (committed.get(w.partition) ?? BigInt(w.low)))
        .map((w) => w.partition)
        .sort((a, b) => a - b);
    } catch (err) {
      this.opts.log.debug({ err: errorMessage(err) }, 'assignment check skipped (Kafka unreachable?)');
      return null;
    }
  }
}
