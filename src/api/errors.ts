import type { FastifyError, FastifyInstance, FastifySchemaValidationError } from 'fastify';
import { PipelineError } from '../core/errors.js';

/**
 * Every error the API answers has one JSON shape, `{ statusCode, code, error, message }`, and a
 * message a person can act on: a bad parameter names the parameter, what it got and what it
 * accepts (the `description` of its schema, which is also what /docs shows).
 */

export interface ErrorBody {
  statusCode: number;
  code: string;
  error: string;
  message: string;
}

export const errorBodySchema = {
  type: 'object',
  properties: {
    statusCode: { type: 'integer' },
    code: { type: 'string' },
    error: { type: 'string' },
    message: { type: 'string' },
  },
  required: ['statusCode', 'code', 'error', 'message'],
} as const;

const PART: Record<string, string> = {
  querystring: 'query parameter',
  params: 'path parameter',
  body: 'body field',
  headers: 'header',
};

/** Fastify `schemaErrorFormatter`; needs ajv `verbose: true` so errors carry their schema and data. */
export function formatSchemaError(errors: FastifySchemaValidationError[], dataVar: string): Error {
  const e = errors[0] as
    (FastifySchemaValidationError & { parentSchema?: Record<string, unknown>; data?: unknown }) | undefined;
  const part = PART[dataVar] ?? dataVar;
  if (!e) return new Error(`invalid ${part}`);
  const field = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
  if (e.keyword === 'additionalProperties') {
    const extra = String((e.params as { additionalProperty?: unknown }).additionalProperty);
    const known = Object.keys((e.parentSchema?.properties as Record<string, unknown> | undefined) ?? {});
    return new Error(`unknown ${part} '${extra}': accepts ${known.length ? known.join(', ') : 'none'}`);
  }
  if (e.keyword === 'required') {
    const missing = String((e.params as { missingProperty?: unknown }).missingProperty);
    return new Error(`missing ${part} '${missing}'`);
  }
  const accepts =
    typeof e.parentSchema?.description === 'string' ? e.parentSchema.description : (e.message ?? 'a valid value');
  const got = e.data === undefined ? '' : ` (got ${JSON.stringify(e.data)})`;
  return new Error(`invalid ${part} '${field}'${got}: ${accepts}`);
}

export function errorBody(statusCode: number, code: string, message: string): ErrorBody {
  const error =
    statusCode === 400
      ? 'Bad Request'
      : statusCode === 401
        ? 'Unauthorized'
        : statusCode === 404
          ? 'Not Found'
          : statusCode === 503
            ? 'Service Unavailable'
            : statusCode >= 500
              ? 'Internal Server Error'
              : 'Error';
  return { statusCode, code, error, message };
}

/** An error answered with its own status and code (e.g. 404 for unknown content). */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const UNAVAILABLE = new Set(['SERVICE_UNREACHABLE', 'TIMEOUT']);

export function installErrorHandlers(app: FastifyInstance): void {
  app.setNotFoundHandler((request, reply) => {
    void reply
      .code(404)
      .send(
        errorBody(
          404,
          'NOT_FOUND',
          `no route ${request.method} ${request.url.split('?')[0] ?? ''}; see /docs for the API`,
        ),
      );
  });
  app.setErrorHandler((err: FastifyError | PipelineError | HttpError | Error, request, reply) => {
    if (err instanceof HttpError)
      return reply.code(err.statusCode).send(errorBody(err.statusCode, err.code, err.message));
    const fe = err as FastifyError;
    if (fe.validation) return reply.code(400).send(errorBody(400, 'BAD_REQUEST', fe.message));
    if (err instanceof PipelineError && err.code === 'INVALID_VALUE')
      return reply.code(400).send(errorBody(400, 'BAD_REQUEST', err.message));
    if (err instanceof PipelineError && UNAVAILABLE.has(err.code)) {
      return reply.code(503).send(errorBody(503, err.code, err.message));
    }
    if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
      return reply.code(fe.statusCode).send(errorBody(fe.statusCode, fe.code ?? 'BAD_REQUEST', fe.message));
    }
    // A store that cannot be reached (Redis down, a closed client) is not the caller's fault: 503.
    if (/ECONNREFUSED|offline|closed|not connected|Socket|ClientClosed/i.test(`${err.name} ${err.message}`)) {
      request.log.warn({ err }, 'store unavailable');
      return reply
        .code(503)
        .send(errorBody(503, 'SERVICE_UNREACHABLE', `the data store is unavailable: ${err.message}`));
    }
    request.log.error({ err }, 'request failed');
    return reply.code(500).send(errorBody(500, 'INTERNAL', 'internal error; see the API log'));
  });
}
