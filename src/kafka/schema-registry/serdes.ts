/**
 * The Confluent schema-registry library (`@confluentinc/schemaregistry`: its REST client, Avro serdes
 * and wire-format helpers), loaded on first use. Only components that read or write Avro pay for it:
 * the library's index also loads every KMS driver (about 0.9 s of start-up on the machines of
 * 2026-12-07), its client and Avro modules about 0.2 s, so they are imported directly.
 */

import type * as ClientModule from '@confluentinc/schemaregistry/dist/schemaregistry-client.js';
import type * as AvroModule from '@confluentinc/schemaregistry/dist/serde/avro.js';
import type * as SerdeModule from '@confluentinc/schemaregistry/dist/serde/serde.js';
import type * as RestErrorModule from '@confluentinc/schemaregistry/dist/rest-error.js';

export interface Serdes {
  client: typeof ClientModule;
  avro: typeof AvroModule;
  serde: typeof SerdeModule;
  restError: typeof RestErrorModule;
}

/** An avsc type as the library's Avro serdes build it (the schema resolved, references included). */
export type AvroType = Awaited<ReturnType<AvroModule.AvroSerializer['toType']>>[0];

let loading: Promise<Serdes> | undefined;

export function loadSerdes(): Promise<Serdes> {
  loading ??= (async () => {
    const [client, avro, serde, restError] = await Promise.all([
      import('@confluentinc/schemaregistry/dist/schemaregistry-client.js'),
      import('@confluentinc/schemaregistry/dist/serde/avro.js'),
      import('@confluentinc/schemaregistry/dist/serde/serde.js'),
      import('@confluentinc/schemaregistry/dist/rest-error.js'),
    ]);
    return { client, avro, serde, restError };
  })();
  return loading;
}
