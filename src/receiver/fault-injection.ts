import { z } from 'zod';

/**
 * Failures the reference receiver injects on demand (POST /control, `--fail-rate` …), so tests and
 * the end-to-end proof can switch an unhealthy external system on and off at runtime.
 *
 * - `down`: every POST /events connection is dropped without an answer (the client sees a network
 *   error), before anything is counted.
 * - `failNext`: the next N POST /events answer `status` (deterministic; decremented per request).
 * - `failRate`: otherwise each POST /events answers `status` with this probability.
 * - `status` (default 503) with optional `retryAfter` (seconds, or an HTTP-date string) sent as the
 *   Retry-After header.
 * - `failPhase`: `before` (default) fails without counting the batch; `after` counts it and then
 *   answers the failure, i.e. the acknowledgement is lost and the client's retry must be deduped.
 * - `latencyMs`: added before every POST /events is handled (drives client timeouts).
 * - `rejectEventIds`: a POST /events holding any of these event ids is refused with 422, nothing of
 *   it counted (a system's validation refusing a record: the sink must find and park that one).
 */

export const faultControlSchema = z
  .object({
    failRate: z.number().min(0).max(1),
    latencyMs: z.number().int().min(0).max(600_000),
    down: z.boolean(),
    status: z.number().int().min(400).max(599),
    retryAfter: z.union([z.number().int().min(0), z.string().min(1), z.null()]),
    failPhase: z.enum(['before', 'after']),
    failNext: z.number().int().min(0),
    rejectEventIds: z.array(z.string().min(1)),
  })
  .strict();

export type FaultControl = z.infer<typeof faultControlSchema>;
export const faultPatchSchema = faultControlSchema.partial();
export type FaultPatch = z.infer<typeof faultPatchSchema>;

export const HEALTHY: FaultControl = {
  failRate: 0,
  latencyMs: 0,
  down: false,
  status: 503,
  retryAfter: null,
  failPhase: 'before',
  failNext: 0,
  rejectEventIds: [],
};

export type FaultDecision =
  | { kind: 'ok' }
  | { kind: 'drop' }
  | { kind: 'fail'; status: number; retryAfter: string | null; phase: 'before' | 'after' };

export class Faults {
  private state: FaultControl;

  constructor(
    initial: FaultPatch = {},
    private readonly random: () => number = Math.random,
  ) {
    this.state = faultControlSchema.parse({ ...HEALTHY, ...initial });
  }

  get(): FaultControl {
    return { ...this.state };
  }

  /** Applies a validated patch; throws a ZodError for an invalid one. Returns the new control. */
  patch(p: unknown): FaultControl {
    this.state = faultControlSchema.parse({ ...this.state, ...faultPatchSchema.parse(p) });
    return this.get();
  }

  /** The event id of `ids` that the system refuses, if any (`rejectEventIds`). */
  refused(ids: readonly string[]): string | undefined {
    const reject = this.state.rejectEventIds;
    return reject.length === 0 ? undefined : ids.find((id) => reject.includes(id));
  }

  /** Decides the fate of one POST /events (consumes one `failNext`). */
  decide(): FaultDecision {
    const s = this.state;
    if (s.down) return { kind: 'drop' };
    let fail = false;
    if (s.failNext > 0) {
      s.failNext--;
      fail = true;
    } else if (s.failRate > 0 && this.random() < s.failRate) {
      fail = true;
    }
    if (!fail) return { kind: 'ok' };
    return {
      kind: 'fail',
      status: s.status,
      retryAfter: s.retryAfter === null ? null : String(s.retryAfter),
      phase: s.failPhase,
    };
  }
}
