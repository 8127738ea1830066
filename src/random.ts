/**
 * A seeded, portable pseudo-random number generator.
 *
 * Generator: xoshiro128** (Blackman & Vigna) on 32-bit words, seeded through splitmix32.
 * Every step uses only 32-bit integer arithmetic (`Math.imul`, shifts, xor), and the normal
 * draw uses only IEEE-754 basic operations (+, −, ×, ÷, sqrt, all correctly rounded) together
 * with a series logarithm written here, because `Math.log` may differ in the last bit
 * between JavaScript engines. Hence: same seed → the same numbers on every platform.
 *
 * - `nextUint32()`: 32 random bits.
 * - `uniform()`: a double in [0, 1) with 53 random bits (two 32-bit draws).
 * - `normal()`: N(0, 1) by Marsaglia's polar method (rejection; the second value of the pair
 *   is discarded so that the state is only the four words).
 */
export class Random {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  constructor(seed: number = 0) {
    let x = seed >>> 0;
    const next = (): number => {
      // splitmix32
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
  }

  /** The four 32-bit words of the state: save them to resume the stream exactly. */
  getState(): [number, number, number, number] {
    return [this.s0, this.s1, this.s2, this.s3];
  }

  /** Restores a state captured by `getState()`. */
  static fromState(state: readonly number[]): Random {
    if (state.length !== 4 || state.every((w) => w === 0)) {
      throw new RangeError('Random.fromState: need four 32-bit words, not all zero');
    }
    const r = new Random(0);
    [r.s0, r.s1, r.s2, r.s3] = state.map((w) => w >>> 0) as [number, number, number, number];
    return r;
  }

  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    this.s0 >>>= 0;
    this.s1 >>>= 0;
    this.s2 >>>= 0;
    this.s3 >>>= 0;
    return result;
  }

  /** Uniform in [0, 1) with 53 bits of randomness. */
  uniform(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** Standard normal N(0, 1) (Marsaglia polar method). */
  normal(): number {
    for (;;) {
      const u = 2 * this.uniform() - 1;
      const v = 2 * this.uniform() - 1;
      const s = u * u + v * v;
      if (s > 0 && s < 1) return u * Math.sqrt((-2 * portableLog(s)) / s);
    }
  }

  /** Fills `out` with N(mean, std²) draws. */
  fillNormal(out: { length: number; [i: number]: number }, std = 1, mean = 0): void {
    for (let i = 0; i < out.length; i++) out[i] = mean + std * this.normal();
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

const LN2 = 0.6931471805599453;
const SQRT2 = 1.4142135623730951;

/**
 * Natural logarithm of a positive finite double from basic IEEE operations only, so that it
 * is bit-identical on every engine: x = m·2^e with m ∈ [√½, √2), ln m = 2·atanh((m−1)/(m+1))
 * summed as a series to below 1 ulp.
 */
export function portableLog(x: number): number {
  if (!(x > 0) || !Number.isFinite(x)) return x === 0 ? -Infinity : NaN;
  let e = 0;
  let m = x;
  while (m >= SQRT2) {
    m /= 2;
    e++;
  }
  while (m < SQRT2 / 2) {
    m *= 2;
    e--;
  }
  const t = (m - 1) / (m + 1);
  const t2 = t * t;
  let term = t;
  let sum = 0;
  for (let k = 1; k < 60; k += 2) {
    const add = term / k;
    sum += add;
    if (Math.abs(add) < 1e-18 * Math.abs(sum)) break;
    term *= t2;
  }
  return 2 * sum + e * LN2;
}
