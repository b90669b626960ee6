/**
 * The DBLog watermark window of one incremental-snapshot chunk: which rows of the chunk the stream
 * wins. Pure (no I/O); fed in stream order by the snapshotter (snapshotter.ts), unit-tested in
 * test/cdc/watermark-window.test.ts.
 *
 * The chunk reader writes a low watermark L into the WAL, then reads the chunk in a REPEATABLE READ
 * transaction whose snapshot S it also reports (xmin, xmax, in-progress xids), then writes a high
 * watermark H. In the stream (commit order) the chunk's rows are emitted at H. A row of the chunk
 * is dropped (the stream wins: its own change events carry the row) when its key was written by
 *
 * - a transaction between L and H (whether S saw it or not is unknown: the stream is newer or
 *   equal, and it already holds the row's change), or
 * - a transaction before L that S did not see (its commit record precedes L's, but it was not yet
 *   visible when S was taken: the chunk would hold a state older than what the stream already
 *   emitted). Such transactions are kept across chunks until a snapshot sees them.
 *
 * Every other row is emitted as it was in S: its earlier changes are in the stream before H (S saw
 * them), its later ones after H (S cannot have seen a transaction committed after H, as S was taken
 * before H was written).
 *
 * Contract: `begin`/`touch`/`end` for every streamed transaction while the window is `active`
 * (`touch` with the Kafka key of every record it writes to the snapshotted table's topic), `low`
 * when L is seen, `high` when H is seen, with the chunk's rows; between chunks the window keeps
 * recording (the next chunk's L may come any time).
 */

/** The chunk's snapshot, as pg_current_snapshot() gave it (32-bit xids, as pgoutput's BEGIN). */
export interface SnapshotVisibility {
  xmin: number;
  xmax: number;
  xip: ReadonlySet<number>;
}

/** A chunk row: its Kafka key (JSON of the primary key) and whatever the caller emits for it. */
export interface KeyedRow {
  key: string | null;
}

interface TxnKeys {
  xid: number;
  keys: Set<string>;
  /** Committed after the current chunk's low watermark. */
  afterLow: boolean;
}

/** 32-bit xid comparison modulo 2^32, as PostgreSQL's TransactionIdPrecedes. */
function precedes(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

/** Whether the snapshot sees the (committed) transaction `xid`. */
export function visibleTo(snapshot: SnapshotVisibility, xid: number): boolean {
  if (snapshot.xip.has(xid)) return false;
  return precedes(xid, snapshot.xmax);
}

/** The 32-bit xid of an xid8 (epoch << 32 | xid), as PostgreSQL prints it. */
export function xid32(xid8: string): number {
  return Number(BigInt(xid8) & 0xffffffffn);
}

export class WatermarkWindow {
  /** Transactions recorded since the last high watermark (and older ones no snapshot saw yet). */
  private history: TxnKeys[] = [];
  private current: TxnKeys | null = null;
  private lowSeen = false;

  /** A streamed transaction begins. */
  begin(xid: number): void {
    this.current = { xid, keys: new Set(), afterLow: this.lowSeen };
  }

  /** The current transaction writes a record with this key to the snapshotted table's topic. */
  touch(key: string | null): void {
    if (key !== null) this.current?.keys.add(key);
  }

  /** The current transaction is complete in the stream. */
  end(): void {
    const txn = this.current;
    this.current = null;
    if (txn && txn.keys.size > 0) this.history.push(txn);
  }

  /** The chunk's low watermark is seen. */
  low(): void {
    this.lowSeen = true;
  }

  /** Keys recorded and not yet settled (transactions kept for the next chunk included). */
  get recordedTransactions(): number {
    return this.history.length;
  }

  /**
   * The chunk's high watermark is seen: returns the rows the stream does not win, in their order,
   * and starts the next chunk's window. Without a low watermark first it returns null: the chunk's
   * window is unknown, and the caller reads the chunk again.
   */
  high<R extends KeyedRow>(rows: readonly R[], snapshot: SnapshotVisibility): { kept: R[]; dropped: number } | null {
    const lowSeen = this.lowSeen;
    const stale = new Set<string>();
    const keep: TxnKeys[] = [];
    for (const txn of this.history) {
      const seen = visibleTo(snapshot, txn.xid);
      if (txn.afterLow || !seen) for (const k of txn.keys) stale.add(k);
      // A transaction this snapshot did not see may be unseen by the next one too (see the header).
      if (!seen) keep.push({ ...txn, afterLow: false });
    }
    this.history = keep;
    this.lowSeen = false;
    if (!lowSeen) return null;
    const kept = rows.filter((r) => r.key === null || !stale.has(r.key));
    return { kept, dropped: rows.length - kept.length };
  }

  /** Forgets everything (the snapshot ended or moved to another table). */
  reset(): void {
    this.history = [];
    this.current = null;
    this.lowSeen = false;
  }
}
