import type { Config } from '../../config/load.js';
import { SchemaRegistry } from './registry.js';

/**
 * The registry the configuration names (SCHEMA_REGISTRY_URL, else the private stack's; its basic
 * authentication and the compatibility rule set on new subjects), for a stage in Avro mode.
 */
export function connectConfiguredRegistry(config: Config): Promise<SchemaRegistry> {
  return SchemaRegistry.connect({
    url: config.schemaRegistryUrl,
    ...(config.SCHEMA_REGISTRY_BASIC_AUTH ? { basicAuth: config.SCHEMA_REGISTRY_BASIC_AUTH } : {}),
    compatibility: config.SCHEMA_COMPATIBILITY,
  });
}
