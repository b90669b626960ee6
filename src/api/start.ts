import type { AddressInfo } from 'node:net';
import type { Config } from '../config/load.js';
import { PipelineError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { RunningComponent } from '../runtime/lifecycle.js';
import { buildApi } from './app.js';
import { checkApiExposure } from './auth.js';
import { createApiDeps } from './deps.js';

/**
 * `engage api`: builds the API with real clients and listens on API_HOST:API_PORT (port 0 picks a
 * free one; `url` says which). `stop` closes the server (in-flight requests finish) and then the
 * clients. Fails with SERVICE_MISCONFIGURED when the port is taken, and with CONFIG_INVALID when
 * API_HOST is not a loopback address and API_TOKEN is unset (auth.ts).
 */

export interface RunningApi extends RunningComponent {
  url: string;
  port: number;
}

export async function startApi(config: Config, log: Logger): Promise<RunningApi> {
  checkApiExposure(config.API_HOST, config.API_TOKEN);
  const owned = await createApiDeps(config);
  const app = buildApi(config, owned.deps, { log });
  try {
    await app.listen({ host: config.API_HOST, port: config.API_PORT });
  } catch (err) {
    await app.close().catch(() => undefined);
    await owned.close();
    const code = (err as { code?: unknown }).code;
    if (code === 'EADDRINUSE') {
      throw new PipelineError(
        'SERVICE_MISCONFIGURED',
        `port ${config.API_PORT} on ${config.API_HOST} is taken: stop what uses it or set API_PORT`,
        { cause: err },
      );
    }
    throw err;
  }
  const address = app.server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  log.info(
    { url, auth: config.API_TOKEN ? 'bearer token required for content endpoints' : 'none (loopback only)' },
    `API listening on ${url} (dashboard at /, docs at /docs)`,
  );
  let stopped = false;
  return {
    url,
    port: address.port,
    status: () => ({ url }),
    async stop() {
      if (stopped) return;
      stopped = true;
      await app.close();
      await owned.close();
    },
  };
}
