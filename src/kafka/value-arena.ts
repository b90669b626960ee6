/**
 * Message values encoded off the V8 heap as soon as they are made, for records that wait before
 * they are produced (the processor holds a batch's output until its transaction begins).
 *
 * Why: a JSON string kept on the heap is live through every scavenge until it is produced, and a
 * scavenge copies live strings — about 1 KB per enriched record, measured as the larger part of
 * the processor's garbage-collection time when several batches are in flight (docs/processor.md).
 * Encoded into an arena, the string dies young (free to collect) and the bytes sit in external
 * memory that no collection copies; what stays on the heap per record is one small Buffer view.
 *
 * Contract: `put` returns a view of the bytes, valid as long as the caller holds it (an arena
 * never reuses space: a full chunk is left to the views that point into it and a new one is
 * allocated). Not thread-safe; one arena per batch or per producer loop.
 */

/** Bytes of a chunk unless a single value needs more. */
const DEFAULT_CHUNK_BYTES = 1 << 20;

export class ValueArena {
  private chunk: Buffer;
  private used = 0;

  constructor(private readonly chunkBytes: number = DEFAULT_CHUNK_BYTES) {
    this.chunk = Buffer.allocUnsafeSlow(chunkBytes);
  }

  /** The UTF-8 bytes of `text`, as a view into the arena. */
  put(text: string): Buffer {
    // UTF-8 needs at most 3 bytes per UTF-16 code unit.
    const worst = text.length * 3;
    if (this.used + worst > this.chunk.length) {
      this.chunk = Buffer.allocUnsafeSlow(Math.max(this.chunkBytes, worst));
      this.used = 0;
    }
    const start = this.used;
    this.used += this.chunk.write(text, start, 'utf8');
    return this.chunk.subarray(start, this.used);
  }
}
