import type { Config } from '../config/load.js';
import { PipelineError } from '../core/errors.js';
import { fromEnrichedAvro } from '../core/enriched-avro.js';
import type { EnrichedEvent } from '../core/types.js';
import type { AvroReader } from '../kafka/schema-registry/avro-reader.js';
import { connectConfiguredRegistry } from '../kafka/schema-registry/from-config.js';
import {
  dlqReplayDecoder,
  originOf,
  parseDlqEntry,
  parseEnrichedEvent,
  type InboundMessage,
  type MessageDecoder,
} from './sink-decode.js';

/**
 * The sink runtime's decoders in Avro mode (KAFKA_VALUE_FORMAT=avro): an enriched record is read
 * by its first byte — 0, the wire format's magic byte, as Avro through the registry's writer
 * schemas (prepared once per batch), anything else as JSON, so a topic holding both (written
 * before and after a switch) is read whole. Every sink gets the same EnrichedEvent either way
 * (src/core/enriched-avro.ts). Undecodable bytes go to the DLQ with DECODE_FAILED, as bad JSON does.
 * A sink's fast path for undecoded bytes (`writeEncoded`, JSON only) is not used in this mode.
 */

/** The enriched event of a value, Avro or JSON; the error when it is neither. */
export function parseEnrichedValue(reader: AvroReader, bytes: Buffer | null): EnrichedEvent | PipelineError {
  if (bytes === null || bytes.length === 0 || bytes[0] !== 0) return parseEnrichedEvent(bytes);
  let decoded: unknown;
  try {
    decoded = reader.decode(bytes);
  } catch (err) {
    return err instanceof PipelineError ? err : new PipelineError('DECODE_FAILED', (err as Error).message);
  }
  const event = fromEnrichedAvro(decoded);
  return typeof event === 'string' ? new PipelineError('DECODE_FAILED', `${event}: not an enriched event`) : event;
}

/** The decoder of the enriched topic in Avro mode. */
export function avroEnrichedDecoder(reader: AvroReader): MessageDecoder {
  const decode: MessageDecoder = (m) => {
    const origin = originOf(m);
    const event = parseEnrichedValue(reader, m.value);
    if (event instanceof PipelineError) return { kind: 'reject', error: event, origin };
    return {
      kind: 'record',
      record: { topic: m.topic, partition: m.partition, offset: m.offset, key: origin.key, event },
      origin,
    };
  };
  decode.prepare = (messages: readonly InboundMessage[]) => reader.prepare(messages.map((m) => m.value));
  return decode;
}

/** `dlqReplayDecoder` for a replay in Avro mode: the parked bytes may be Avro or JSON. */
export function avroDlqReplayDecoder(stage: string, reader: AvroReader): MessageDecoder {
  const decode = dlqReplayDecoder(stage, (bytes) => parseEnrichedValue(reader, bytes));
  decode.prepare = (messages: readonly InboundMessage[]) =>
    reader.prepare(
      messages.map((m) => {
        const entry = parseDlqEntry(m.value);
        return entry?.stage === stage && entry.value_base64 !== null ? Buffer.from(entry.value_base64, 'base64') : null;
      }),
    );
  return decode;
}

/** A reader of the enriched topic's Avro values when KAFKA_VALUE_FORMAT=avro, else undefined. */
export async function enrichedReader(
  config: Config,
  topic = config.KAFKA_TOPIC_ENRICHED,
): Promise<AvroReader | undefined> {
  if (config.KAFKA_VALUE_FORMAT !== 'avro') return undefined;
  return (await connectConfiguredRegistry(config)).reader(topic, 'value');
}
