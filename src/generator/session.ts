import type { ContentType, EventType } from '../core/types.js';
import { appVersionFor, type CatalogueItem, type DeviceName, type User } from './popularity.js';
import { WeightedTable, type Rng } from './random.js';

/**
 * One user session on one content item, as the engagement events it produces. Pure: the events
 * depend only on the random stream, the user, the content and the start time.
 *
 * Shape: [click] → play → (pause → play)* → finish | pause | (nothing: the app was closed).
 * `duration_ms` on play/pause/finish is the time listened (read, watched) in the segment that
 * ends at that event — the time since the session's previous event, minus paused time — so a
 * play carries 0, a pause or finish carries the segment it closes, and the durations of one session
 * add up to the time listened, which never exceeds the content length. A finish appears only when
 * the session reaches the end. Clicks (a link or thumbnail opened) carry NULL.
 */

export interface EventPayload {
  session_id: string;
  app_version: string;
  /** Position of the event within its session (0-based). */
  seq: number;
  country: string;
  referrer: string;
  /** Playhead (or reading) position at the event, for play/pause/finish. */
  position_ms?: number;
}

/** An engagement_events row before insertion (the id is the database's). */
export interface GeneratedEvent {
  content_id: string;
  user_id: string;
  event_type: EventType;
  /** ms since the epoch. */
  event_ts: number;
  duration_ms: number | null;
  device: DeviceName;
  raw_payload: EventPayload;
}

interface Profile {
  /** Length assumed when the content's length_seconds is NULL. */
  typicalSeconds: number;
  /** Session is a click and nothing else (opened, bounced). */
  clickOnly: number;
  /** Session starts with a click before playing/reading. */
  clickFirst: number;
  /** Reaches the end. */
  finish: number;
  /** Resumes from an earlier position instead of the start. */
  resume: number;
  /** Mean seconds of listening between pauses. */
  pauseEvery: number;
  /** Mean seconds a pause lasts before playing again. */
  gapMean: number;
  /** An abandoned session ends without any event (app closed) rather than with a pause. */
  silentEnd: number;
  referrers: WeightedTable<string>;
}

const PROFILES: Record<ContentType, Profile> = {
  podcast: {
    typicalSeconds: 2700,
    clickOnly: 0.05,
    clickFirst: 0.12,
    finish: 0.3,
    resume: 0.2,
    pauseEvery: 900,
    gapMean: 420,
    silentEnd: 0.35,
    referrers: new WeightedTable({
      library: 40,
      home_feed: 20,
      search: 12,
      push: 10,
      social: 8,
      web_embed: 5,
      newsletter_email: 5,
    }),
  },
  video: {
    typicalSeconds: 600,
    clickOnly: 0.1,
    clickFirst: 0.3,
    finish: 0.42,
    resume: 0.06,
    pauseEvery: 300,
    gapMean: 60,
    silentEnd: 0.4,
    referrers: new WeightedTable({ home_feed: 38, search: 20, social: 18, related: 14, push: 5, newsletter_email: 5 }),
  },
  newsletter: {
    typicalSeconds: 420,
    clickOnly: 0.4,
    clickFirst: 0.85,
    finish: 0.38,
    resume: 0.02,
    pauseEvery: 180,
    gapMean: 90,
    silentEnd: 0.5,
    referrers: new WeightedTable({ newsletter_email: 70, home_feed: 12, social: 10, search: 8 }),
  },
};

/** Which devices make sense for each content type (no newsletters on a smart speaker). */
const DEVICES_FOR: Record<ContentType, WeightedTable<DeviceName>> = {
  podcast: new WeightedTable<DeviceName>({ ios: 38, android: 32, web: 10, desktop: 6, smart_speaker: 14 }),
  video: new WeightedTable<DeviceName>({ ios: 30, android: 28, web: 20, desktop: 8, smart_tv: 14 }),
  newsletter: new WeightedTable<DeviceName>({ ios: 34, android: 28, web: 26, desktop: 12 }),
};

/** Length in ms the session model plays against (the typical length when the table has NULL). */
export function modelLengthMs(item: CatalogueItem): number {
  return (item.length_seconds ?? PROFILES[item.content_type].typicalSeconds) * 1000;
}

function chooseDevice(rng: Rng, user: User, type: ContentType): DeviceName {
  const allowed = DEVICES_FOR[type];
  if (allowed.has(user.device) && rng.chance(0.8)) return user.device;
  return rng.weighted(allowed);
}

/** Splits `total` ms into `parts` positive integer segments at random cut points. */
function splitSegments(rng: Rng, total: number, parts: number): number[] {
  if (parts <= 1 || total < parts * 1000) return [total];
  const cuts = new Set<number>();
  while (cuts.size < parts - 1) cuts.add(1 + rng.int(total - 1));
  const sorted = [...cuts].sort((a, b) => a - b);
  const out: number[] = [];
  let prev = 0;
  for (const c of sorted) {
    out.push(c - prev);
    prev = c;
  }
  out.push(total - prev);
  return out;
}

/** The events of one session starting at `startMs` (timestamps follow real listening time). */
export function generateSession(rng: Rng, item: CatalogueItem, user: User, startMs: number): GeneratedEvent[] {
  const profile = PROFILES[item.content_type];
  const device = chooseDevice(rng, user, item.content_type);
  const appVersion = device === user.device ? user.app_version : appVersionFor(device, rng);
  const sessionId = rng.uuid();
  const referrer = rng.weighted(profile.referrers);
  const events: GeneratedEvent[] = [];
  const push = (type: EventType, ts: number, duration: number | null, position?: number) => {
    const raw_payload: EventPayload = {
      session_id: sessionId,
      app_version: appVersion,
      seq: events.length,
      country: user.country,
      referrer,
    };
    if (position !== undefined) raw_payload.position_ms = position;
    events.push({
      content_id: item.id,
      user_id: user.id,
      event_type: type,
      event_ts: Math.round(ts),
      duration_ms: duration,
      device,
      raw_payload,
    });
  };

  let t = startMs;
  if (rng.chance(profile.clickOnly)) {
    push('click', t, null);
    return events;
  }
  if (rng.chance(profile.clickFirst)) {
    push('click', t, null);
    t += 1000 + rng.exponential(6000);
  }

  const lengthMs = modelLengthMs(item);
  const startPos = rng.chance(profile.resume) ? Math.floor(rng.range(0.05, 0.7) * lengthMs) : 0;
  const finishes = rng.chance(profile.finish);
  // Abandonment is front-loaded: many leave early, few just before the end.
  const endPos = finishes
    ? lengthMs
    : Math.min(
        lengthMs - 1,
        startPos + Math.max(1000, Math.floor((lengthMs - startPos) * Math.pow(rng.next(), 1.6) * 0.98)),
      );
  const listened = Math.max(0, endPos - startPos);
  const pauses = Math.min(8, rng.poisson(listened / 1000 / profile.pauseEvery));
  const segments = splitSegments(rng, listened, pauses + 1);

  let position = startPos;
  segments.forEach((segment, i) => {
    push('play', t, 0, position);
    t += segment;
    position += segment;
    const last = i === segments.length - 1;
    if (!last) {
      push('pause', t, segment, position);
      t += 2000 + rng.exponential(profile.gapMean * 1000);
    } else if (finishes) {
      push('finish', t, segment, position);
    } else if (!rng.chance(profile.silentEnd)) {
      push('pause', t, segment, position);
    }
  });
  return events;
}

/**
 * Squeezes a session's timestamps into [first event, limitMs] (keeping their order and relative
 * spacing) when it would run past `limitMs` — e.g. a 60-minute listen started 5 minutes ago.
 * Mutates and returns `events`.
 */
export function fitBefore(events: GeneratedEvent[], limitMs: number): GeneratedEvent[] {
  const first = events[0];
  const last = events[events.length - 1];
  if (!first || !last || last.event_ts <= limitMs) return events;
  const start = first.event_ts;
  const span = last.event_ts - start;
  const room = Math.max(0, limitMs - start);
  let prev = -Infinity;
  for (const e of events) {
    let ts = start + Math.floor(((e.event_ts - start) * room) / span);
    if (ts <= prev) ts = Math.min(prev + 1, limitMs);
    e.event_ts = ts;
    prev = ts;
  }
  return events;
}
