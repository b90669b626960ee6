import type { ContentType } from '../core/types.js';
import { Rng, WeightedTable } from './random.js';

/**
 * Who engages with what: a Zipf-like popularity over the catalogue (a few hits, a long tail) and a
 * pool of users whose activity is skewed too (some come back daily, most rarely), so the same
 * users recur across sessions. Pure: everything is derived from the seed and the catalogue.
 */

/** A content item as the generator needs it (read once from the `content` table). */
export interface CatalogueItem {
  id: string;
  content_type: ContentType;
  /** NULL in the table for a few items: the session model then assumes a typical length. */
  length_seconds: number | null;
  /** publish_ts in ms since the epoch: no engagement is generated before it. */
  publish_ms: number;
}

/** Samples indices 0..n-1 with P(rank k) ∝ 1/(k+1)^s, through a cumulative table. */
export class ZipfSampler {
  private readonly cdf: Float64Array;

  constructor(n: number, exponent: number) {
    if (n < 1) throw new RangeError('ZipfSampler needs at least one item');
    this.cdf = new Float64Array(n);
    let total = 0;
    for (let k = 0; k < n; k++) {
      total += 1 / Math.pow(k + 1, exponent);
      this.cdf[k] = total;
    }
    for (let k = 0; k < n; k++) this.cdf[k] = (this.cdf[k] as number) / total;
  }

  /** The rank (0 = most popular) for a uniform draw. */
  sample(rng: Rng): number {
    const u = rng.next();
    let lo = 0;
    let hi = this.cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.cdf[mid] as number) < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Probability of rank `k` (for tests and docs). */
  probability(k: number): number {
    return (this.cdf[k] as number) - (k > 0 ? (this.cdf[k - 1] as number) : 0);
  }
}

/** Content popularity: the catalogue in a seeded popularity order, sampled Zipf-like. */
export class ContentPopularity {
  /** Items ordered from most to least popular. */
  readonly ranked: readonly CatalogueItem[];
  private readonly zipf: ZipfSampler;

  constructor(catalogue: readonly CatalogueItem[], seed: number | string, exponent = 1.1) {
    if (catalogue.length === 0) {
      throw new RangeError('the content table is empty: apply sql/init.sql (engage stack up does) before generating');
    }
    // Sort first so the ranking depends only on the seed, never on the order rows were read in.
    const sorted = catalogue.slice().sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    this.ranked = Rng.derive(seed, 'popularity').shuffled(sorted);
    this.zipf = new ZipfSampler(this.ranked.length, exponent);
  }

  /** A content item published at or before `atMs`; falls back to the oldest item when the draws
   *  keep hitting not-yet-published content (only possible for a window before most publications). */
  pick(rng: Rng, atMs: number): CatalogueItem {
    for (let attempt = 0; attempt < 12; attempt++) {
      const item = this.ranked[this.zipf.sample(rng)] as CatalogueItem;
      if (item.publish_ms <= atMs) return item;
    }
    return this.ranked.reduce((a, b) => (b.publish_ms < a.publish_ms ? b : a));
  }
}

export type DeviceName = 'ios' | 'android' | 'web' | 'desktop' | 'smart_tv' | 'smart_speaker';

/** One synthetic listener/reader/viewer. */
export interface User {
  id: string;
  /** The device this user mostly uses. */
  device: DeviceName;
  app_version: string;
  country: string;
}

const HOME_DEVICES = new WeightedTable<DeviceName>({
  ios: 34,
  android: 30,
  web: 20,
  desktop: 9,
  smart_tv: 4,
  smart_speaker: 3,
});
const COUNTRIES = new WeightedTable({
  US: 38,
  GB: 12,
  DE: 8,
  CA: 7,
  IN: 7,
  AU: 5,
  FR: 5,
  BR: 4,
  NL: 3,
  ES: 3,
  SE: 2,
  JP: 2,
  MX: 2,
  IE: 2,
});

/** App versions per platform, newest first: most users are on a recent release. */
const APP_VERSIONS: Record<DeviceName, readonly string[]> = {
  ios: ['6.4.1', '6.4.0', '6.3.2', '6.2.0', '5.9.7'],
  android: ['6.4.0', '6.3.5', '6.3.2', '6.1.0', '5.8.3'],
  web: ['web-2026.11.2', 'web-2026.11.1', 'web-2026.10.4'],
  desktop: ['desktop-3.2.0', 'desktop-3.1.4', 'desktop-3.0.9'],
  smart_tv: ['tv-2.8.0', 'tv-2.7.3', 'tv-2.5.1'],
  smart_speaker: ['skill-1.14', 'skill-1.13'],
};

export function appVersionFor(device: DeviceName, rng: Rng): string {
  const versions = APP_VERSIONS[device];
  // Geometric over releases: ~55% newest, then older ones.
  let i = 0;
  while (i < versions.length - 1 && rng.chance(0.45)) i++;
  return versions[i] as string;
}

/** A pool of users with skewed activity: `pick` returns the same users again and again. */
export class UserPool {
  readonly users: readonly User[];
  private readonly zipf: ZipfSampler;

  constructor(size: number, seed: number | string, exponent = 0.8) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError('the user pool needs at least one user');
    const rng = Rng.derive(seed, 'users');
    const users: User[] = [];
    for (let i = 0; i < size; i++) {
      const device = rng.weighted(HOME_DEVICES);
      users.push({ id: rng.uuid(), device, app_version: appVersionFor(device, rng), country: rng.weighted(COUNTRIES) });
    }
    this.users = users;
    this.zipf = new ZipfSampler(size, exponent);
  }

  pick(rng: Rng): User {
    return this.users[this.zipf.sample(rng)] as User;
  }
}
