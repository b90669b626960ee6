/**
 * A small, fast, seedable PRNG for the generator (sfc32: 128-bit state, 32-bit output). The same
 * seed always yields the same sequence on every platform, which is what makes `--seed` runs
 * reproducible. Not cryptographic — never use it for secrets.
 */

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number | string) {
    // Expand the seed into four 32-bit words with a string hash (cyrb128-style mixing).
    const text = typeof seed === 'number' ? `n:${seed}` : `s:${seed}`;
    let h1 = 0x6a09e667;
    let h2 = 0xbb67ae85;
    let h3 = 0x3c6ef372;
    let h4 = 0xa54ff53a;
    for (let i = 0; i < text.length; i++) {
      const k = text.charCodeAt(i);
      h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
      h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
      h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
      h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
    }
    h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
    h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
    h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
    h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
    this.a = (h1 ^ h2 ^ h3 ^ h4) >>> 0;
    this.b = (h2 ^ h1) >>> 0;
    this.c = (h3 ^ h1) >>> 0;
    this.d = (h4 ^ h1) >>> 0;
    for (let i = 0; i < 15; i++) this.uint32();
  }

  /** A derived, independent stream (e.g. one for users, one for sessions) from this seed. */
  static derive(seed: number | string, stream: string): Rng {
    return new Rng(`${String(seed)}/${stream}`);
  }

  uint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.uint32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Uniform in [min, max). */
  range(min: number, max: number): number {
    return min + this.next() * (max - min);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty list');
    return items[this.int(items.length)] as T;
  }

  /** Picks a key of `table` with probability proportional to its weight. */
  weighted<K extends string>(table: WeightedTable<K>): K {
    return table.pick(this);
  }

  /** Exponential with the given mean. */
  exponential(mean: number): number {
    return -Math.log(1 - this.next()) * mean;
  }

  /** Poisson with mean `lambda` (Knuth's method; fine for the small means used here). */
  poisson(lambda: number): number {
    if (lambda <= 0) return 0;
    const limit = Math.exp(-Math.min(lambda, 30));
    let k = 0;
    let p = this.next();
    while (p > limit) {
      k++;
      p *= this.next();
    }
    return k;
  }

  /** A random (version 4 layout) UUID drawn from this stream, so it is reproducible by seed. */
  uuid(): string {
    const a = this.uint32();
    const b = this.uint32();
    const c = this.uint32();
    const d = this.uint32();
    return (
      `${hex8(a)}-${HEX[(b >>> 24) & 0xff]}${HEX[(b >>> 16) & 0xff]}-4${((b >>> 8) & 0x0f).toString(16)}${HEX[b & 0xff]}-` +
      `${HEX[((c >>> 24) & 0x3f) | 0x80]}${HEX[(c >>> 16) & 0xff]}-${HEX[(c >>> 8) & 0xff]}${HEX[c & 0xff]}${hex8(d)}`
    );
  }

  /** Fisher–Yates shuffle of a copy. */
  shuffled<T>(items: readonly T[]): T[] {
    const out = items.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = out[i] as T;
      out[i] = out[j] as T;
      out[j] = tmp;
    }
    return out;
  }
}

const HEX: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function hex8(x: number): string {
  return `${HEX[(x >>> 24) & 0xff]}${HEX[(x >>> 16) & 0xff]}${HEX[(x >>> 8) & 0xff]}${HEX[x & 0xff]}`;
}

/** A categorical distribution built once (keys with relative weights) and sampled many times. */
export class WeightedTable<K extends string> {
  private readonly keys: K[];
  private readonly cdf: number[];

  constructor(weights: Readonly<Partial<Record<K, number>>>) {
    const entries = (Object.entries(weights) as Array<[K, number]>).filter(([, w]) => w > 0);
    if (entries.length === 0) throw new RangeError('a weighted table needs a positive weight');
    const total = entries.reduce((sum, [, w]) => sum + w, 0);
    let acc = 0;
    this.keys = entries.map(([k]) => k);
    this.cdf = entries.map(([, w]) => (acc += w / total));
  }

  pick(rng: Rng): K {
    const u = rng.next();
    for (let i = 0; i < this.cdf.length; i++) if (u < (this.cdf[i] as number)) return this.keys[i] as K;
    return this.keys[this.keys.length - 1] as K;
  }

  has(key: K): boolean {
    return this.keys.includes(key);
  }
}

/** A fresh seed for runs without `--seed` (printed in the summary so the run can be repeated). */
export function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 31);
}
