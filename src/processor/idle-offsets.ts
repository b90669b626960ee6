import { performance } from 'node:perf_hooks';

/**
 * Settles the transaction marker an idle input partition ends on, so the processor group's
 * committed offsets reach the high watermark — lag 0 in every tool that reads the group
 * (`kafka-consumer-groups`, Burrow, exporters) — instead of staying one short per partition while
 * the stream is quiet, which such tools report as a stalled consumer.
 *
 * Why it is needed: the CDC writes the input in transactions. A batch commits the offset after its
 * last record; the commit marker that follows is never handed over, so no batch ever commits past
 * it. The consumer's position does move past it, and once a partition has stayed idle for
 * `afterMs` (so that steady traffic, whose partitions are idle only briefly, adds no transaction)
 * this commits that position through `commit` (an offsets-only transaction).
 *
 * Contract, all on the processor's main thread:
 * - `busy(p)` when a batch of partition `p` is handed over; `committed(p, next)` once it committed;
 * - `idle(p, position)` from the consumer's onCaughtUp: after a consume round, for a partition
 *   with nothing buffered or running, `position` being its next offset to read;
 * - `forget(ps)` when partitions are assigned or revoked (their committed offset is unknown again:
 *   the first idle report after an assignment commits once).
 * At most one commit per partition is in flight; a failed one is retried at a later idle report.
 */
export class IdleOffsets {
  private readonly committedAt = new Map<number, number>();
  private readonly idleSince = new Map<number, number>();
  private readonly inFlight = new Set<number>();

  constructor(
    private readonly commit: (partition: number, offset: number) => Promise<void>,
    private readonly afterMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  busy(partition: number): void {
    this.idleSince.delete(partition);
  }

  committed(partition: number, nextOffset: number): void {
    if (nextOffset > (this.committedAt.get(partition) ?? -1)) this.committedAt.set(partition, nextOffset);
  }

  forget(partitions: readonly number[]): void {
    for (const p of partitions) {
      this.committedAt.delete(p);
      this.idleSince.delete(p);
    }
  }

  idle(partition: number, position: number): void {
    const at = this.now();
    const since = this.idleSince.get(partition);
    if (since === undefined) {
      this.idleSince.set(partition, at);
      return;
    }
    if (at - since < this.afterMs || this.inFlight.has(partition)) return;
    const known = this.committedAt.get(partition);
    if (known !== undefined && position <= known) return;
    this.inFlight.add(partition);
    this.commit(partition, position).then(
      () => {
        this.inFlight.delete(partition);
        this.committed(partition, position);
      },
      () => {
        this.inFlight.delete(partition);
      },
    );
  }
}
