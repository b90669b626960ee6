import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { PipelineError } from '../core/errors.js';
import { errorBody } from './errors.js';

/**
 * The optional bearer token (API_TOKEN). When set, every request needs
 * `Authorization: Bearer <token>` except:
 * - /health and /health/* (orchestrators' probes) and /metrics and /metrics/* (Prometheus scrapes);
 * - the static shells that hold no pipeline data and must load in a browser before any token can
 *   be attached: the dashboard page and its assets (`/`, `/dashboard/*`) and the API description
 *   (`/docs`, `/docs/*`). The dashboard then sends the token itself (see src/api/dashboard/app.js).
 * Comparison is constant-time. A missing or wrong token gets 401 with `WWW-Authenticate: Bearer`.
 */

const OPEN = /^\/(?:health(?:\/.*)?|metrics(?:\/.*)?|dashboard\/.*|docs(?:\/.*)?|favicon\.ico)?$/;

export function isOpenPath(url: string): boolean {
  const q = url.indexOf('?');
  return OPEN.test(q === -1 ? url : url.slice(0, q));
}

/** True for a host only this machine reaches: localhost, 127.0.0.0/8, ::1 (and ::ffff:127.x). */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost' || h.endsWith('.localhost') || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

/**
 * Refuses (CONFIG_INVALID) an API bound beyond loopback without API_TOKEN: its content endpoints
 * serve the pipeline's data to whoever reaches the port (docs/security.md).
 */
export function checkApiExposure(host: string, token: string | undefined): void {
  if (token !== undefined || isLoopbackHost(host)) return;
  throw new PipelineError(
    'CONFIG_INVALID',
    `API_HOST=${host} listens beyond loopback, so the API needs a token: set API_TOKEN (8 characters or more, e.g. API_TOKEN=$(openssl rand -hex 24)) and send it as "Authorization: Bearer <token>", or set API_HOST=127.0.0.1 (docs/security.md)`,
  );
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** An onRequest hook enforcing `token`; null when no token is configured (everything open). */
export function bearerAuth(
  token: string | undefined,
): ((req: FastifyRequest, reply: FastifyReply) => Promise<void>) | null {
  if (token === undefined) return null;
  const expected = digest(token);
  return async (req, reply) => {
    if (isOpenPath(req.url)) return;
    const header = req.headers.authorization;
    const m = typeof header === 'string' ? /^Bearer\s+(.+)$/i.exec(header.trim()) : null;
    if (!m) {
      await reply
        .code(401)
        .header('www-authenticate', 'Bearer realm="engage"')
        .send(
          errorBody(
            401,
            'UNAUTHORIZED',
            'this API requires a bearer token: send "Authorization: Bearer <API_TOKEN>" (the dashboard accepts it once as /?token=<API_TOKEN>)',
          ),
        );
      return;
    }
    if (!timingSafeEqual(digest(m[1] as string), expected)) {
      await reply
        .code(401)
        .header('www-authenticate', 'Bearer realm="engage", error="invalid_token"')
        .send(
          errorBody(401, 'UNAUTHORIZED', 'the bearer token is not valid: send the API_TOKEN the API was started with'),
        );
    }
  };
}
