import { timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { ZodError } from 'zod';
import { PipelineError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { parseAuthHeader } from '../sinks/external/http-client.js';
import { IDEMPOTENCY_HEADER } from '../sinks/external/wire-format.js';
import { Faults, type FaultControl, type FaultPatch } from './fault-injection.js';
import { ReceiverStore, type EventView, type ReceivedEvent, type ReceiverStats } from './receiver-store.js';

/**
 * The reference external system (`engage external-receiver`, `npm start`, the tests):
 *   POST /events       the sink's wire format (src/sinks/external/wire-format.ts); auth checked when
 *                      configured; deduped by Idempotency-Key and by each event's `event_key`
 *                      ((event_id, event_ts) when absent); 200 {accepted, duplicates,
 *                      duplicate_batch}; 400 for a malformed batch, 401 for bad credentials
 *   GET  /stats        counters (ReceiverStats)
 *   GET  /events/:id   one received event (by key, or the newest event of an id) with its
 *                      delivery count, 404 when never received
 *   GET|POST /control  read or change the injected failures (FaultControl; POST takes a partial)
 *   GET  /health       200 while the process runs (even when told to be down)
 * The control endpoints carry no auth: the receiver is a local test double, bound to 127.0.0.1.
 */

export interface ReceiverOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  host?: string;
  /** Expected auth header line, `Name: value` (the format of EXTERNAL_API_AUTH_HEADER). */
  auth?: string;
  /** Append-only JSONL of accepted events; restored on start. */
  dataFile?: string;
  control?: FaultPatch;
  maxStoredEvents?: number;
  random?: () => number;
  log?: Logger;
}

export interface RunningReceiver {
  /** The POST endpoint, what EXTERNAL_API_URL points at: `http://host:port/events`. */
  url: string;
  baseUrl: string;
  port: number;
  stats(): ReceiverStats;
  /** Applies a partial control (validated; throws on a bad one) and returns the current one. */
  control(patch?: FaultPatch): FaultControl;
  event(id: string): EventView | undefined;
  eventIds(): string[];
  /** Every distinct event's key (src/core/event-identity.ts), first-arrival order. */
  eventKeys(): string[];
  close(): Promise<void>;
}

const BODY_LIMIT = 64 * 1024 * 1024;

function validBatch(body: unknown): ReceivedEvent[] | string {
  const events = (body as { events?: unknown } | null)?.events;
  if (!Array.isArray(events)) return 'body must be a JSON object with an "events" array';
  for (let i = 0; i < events.length; i++) {
    const id = (events[i] as { event_id?: unknown } | null)?.event_id;
    if (typeof id !== 'string' || id === '') return `events[${i}].event_id must be a non-empty string`;
  }
  return events as ReceivedEvent[];
}

function authorised(expected: { name: string; value: string } | undefined, req: FastifyRequest): boolean {
  if (expected === undefined) return true;
  const got = req.headers[expected.name];
  if (typeof got !== 'string') return false;
  const a = Buffer.from(got);
  const b = Buffer.from(expected.value);
  return a.length === b.length && timingSafeEqual(a, b);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function buildReceiverApp(
  store: ReceiverStore,
  faults: Faults,
  opts: Pick<ReceiverOptions, 'auth' | 'log'> = {},
): FastifyInstance {
  const app = Fastify({ bodyLimit: BODY_LIMIT, logger: false, forceCloseConnections: true });
  const expected = opts.auth === undefined ? undefined : parseAuthHeader(opts.auth);
  const c = store.counters;

  const fail = (reply: FastifyReply, status: number, retryAfter: string | null) => {
    c.failures_injected++;
    if (retryAfter !== null) void reply.header('retry-after', retryAfter);
    return reply.code(status).send({ error: 'injected failure', status });
  };

  app.post('/events', async (req, reply) => {
    c.requests++;
    const decision = faults.decide();
    if (decision.kind === 'drop') {
      c.connections_dropped++;
      c.failures_injected++;
      reply.hijack();
      req.raw.socket.destroy();
      return;
    }
    const latency = faults.get().latencyMs;
    if (latency > 0) await sleep(latency);
    if (!authorised(expected, req)) {
      c.auth_rejected++;
      return reply.code(401).send({ error: 'missing or wrong credentials' });
    }
    const key = req.headers[IDEMPOTENCY_HEADER];
    const events = validBatch(req.body);
    if (typeof key !== 'string' || key === '' || typeof events === 'string') {
      c.invalid_requests++;
      return reply
        .code(400)
        .send({ error: typeof events === 'string' ? events : 'the Idempotency-Key header is required' });
    }
    const refused = faults.refused(events.map((e) => e.event_id));
    if (refused !== undefined) {
      c.failures_injected++;
      return reply.code(422).send({ error: `event ${refused} refused`, event_id: refused });
    }
    if (decision.kind === 'fail' && decision.phase === 'before')
      return fail(reply, decision.status, decision.retryAfter);
    const { outcome, fresh } = store.accept(key, events);
    try {
      await store.persist(key, fresh);
    } catch (err) {
      opts.log?.error({ err }, 'external-receiver: could not append to the data file');
      return reply.code(500).send({ error: 'could not persist the batch' });
    }
    if (decision.kind === 'fail') return fail(reply, decision.status, decision.retryAfter);
    return reply.code(200).send(outcome);
  });

  app.get('/stats', async () => store.stats());
  app.get<{ Params: { id: string } }>('/events/:id', async (req, reply) => {
    const view = store.event(req.params.id);
    return view === undefined ? reply.code(404).send({ error: 'never received' }) : view;
  });
  app.get('/control', async () => faults.get());
  app.post('/control', async (req, reply) => {
    try {
      const now = faults.patch(req.body ?? {});
      opts.log?.info({ control: now }, 'external-receiver: control changed');
      return now;
    } catch (err) {
      if (err instanceof ZodError) return reply.code(400).send({ error: 'invalid control', issues: err.issues });
      throw err;
    }
  });
  app.get('/health', async () => ({ ok: true }));
  return app;
}

/** Starts the receiver in this process; resolves once it listens. */
export async function startReceiver(opts: ReceiverOptions = {}): Promise<RunningReceiver> {
  const store = await ReceiverStore.open(opts.dataFile, opts.maxStoredEvents);
  const faults = new Faults(opts.control, opts.random);
  const app = buildReceiverApp(store, faults, opts);
  const host = opts.host ?? '127.0.0.1';
  try {
    await app.listen({ port: opts.port ?? 0, host });
  } catch (err) {
    await store.close();
    if ((err as { code?: unknown }).code === 'EADDRINUSE') {
      throw new PipelineError(
        'SERVICE_MISCONFIGURED',
        `port ${opts.port} on ${host} is taken: stop what uses it, or set EXTERNAL_RECEIVER_PORT (or --port)`,
        { cause: err },
      );
    }
    throw err;
  }
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : (opts.port ?? 0);
  const baseUrl = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  let closing: Promise<void> | undefined;
  return {
    url: `${baseUrl}/events`,
    baseUrl,
    port,
    stats: () => store.stats(),
    control: (patch) => (patch === undefined ? faults.get() : faults.patch(patch)),
    event: (id) => store.event(id),
    eventIds: () => [...store.eventIds()],
    eventKeys: () => [...store.eventKeys()],
    close: () =>
      (closing ??= (async () => {
        await app.close();
        await store.close();
      })()),
  };
}
