// A small seeded PRNG (mulberry32) and the distributions the benchmarks
// draw from. Every random choice in a run comes from an Rng made from the
// run's seed, so a seed reproduces the run exactly.
export class Rng {
  private s: number;

  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }

  /** Uniform in [0,1). */
  next = (): number => {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };

  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** Exponential with the given mean (Poisson inter-arrival times). */
  exp(mean: number): number {
    return -mean * Math.log(1 - this.next());
  }

  normal(mean: number, sd: number): number {
    const u = 1 - this.next();
    const v = this.next();
    return mean + sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Lognormal with the given mean and sigma of the underlying normal. */
  lognormal(mean: number, sigma: number): number {
    const mu = Math.log(mean) - (sigma * sigma) / 2;
    return Math.exp(this.normal(mu, sigma));
  }

  /** A derived, independent generator (e.g. one per stream of choices). */
  fork(salt: number): Rng {
    return new Rng(Math.imul((this.next() * 4294967296) >>> 0, 0x9e3779b1) ^ salt);
  }
}

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz     ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,';

/** Random ASCII text (one byte per char, so 4 chars are one token). */
export function randomText(rng: Rng, chars: number): string {
  const parts: string[] = [];
  for (let i = 0; i < chars; i++) parts.push(ALPHABET[Math.floor(rng.next() * ALPHABET.length)]!);
  return parts.join('');
}

/** Percentile (0..100) of an already sorted array; linear interpolation. */
export function percentileSorted(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const pos = (p / 100) * (n - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export function percentile(values: readonly number[], p: number): number {
  return percentileSorted(Float64Array.from(values).sort(), p);
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}
