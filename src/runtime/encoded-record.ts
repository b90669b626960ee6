import { PipelineError } from '../core/errors.js';
import type { EnrichedEvent } from '../core/types.js';
import type { SinkRecord } from '../core/sink-contract.js';
import { originOf, parseEnrichedEvent, type MessageDecoder } from './sink-decode.js';

/**
 * A record of the enriched topic whose value is decoded only when `event` is first read: the
 * decoder the runner uses for a sink with `writeEncoded`, whose fast path takes the bytes as they
 * are (batch-delivery.ts). On the checked way the runtime calls `decode()` before `check`, so a
 * value that is not an enriched event goes to the DLQ with DECODE_FAILED exactly as with the
 * eager decoder; `event` itself throws that error if read before.
 */
export class EncodedRecord implements SinkRecord {
  private decoded: EnrichedEvent | PipelineError | undefined;

  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly offset: string,
    readonly key: string | null,
    /** The message value as read (null for a tombstone). */
    readonly value: Buffer | null,
  ) {}

  /** Decodes the value once; the error when it is not an enriched event, else null. */
  decode(): PipelineError | null {
    this.decoded ??= parseEnrichedEvent(this.value);
    return this.decoded instanceof PipelineError ? this.decoded : null;
  }

  get event(): EnrichedEvent {
    const err = this.decode();
    if (err) throw err;
    return this.decoded as EnrichedEvent;
  }
}

/** The lazy decoder: every message becomes an EncodedRecord; nothing is parsed here. */
export const decodeEncodedMessage: MessageDecoder = (m) => {
  const origin = originOf(m);
  return { kind: 'record', record: new EncodedRecord(m.topic, m.partition, m.offset, origin.key, m.value), origin };
};
