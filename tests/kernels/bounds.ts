/**
 * Per-element error bounds for comparing an f32 kernel with the f64 oracle: element i passes
 * when |got − ref| ≤ tol(i). The bounds are forward-error bounds of the f32 computation
 * (u = 2⁻²⁴ is the f32 unit roundoff), written per kernel in the suite with their derivation.
 */
export const U32 = 2 ** -24;

/** Throws with the worst element unless every |got[i] − ref[i]| ≤ tol(i). */
export function expectWithin(got: ArrayLike<number>, ref: ArrayLike<number>, tol: (i: number) => number, name: string): void {
  if (got.length !== ref.length) throw new Error(`${name}: length ${got.length} != reference length ${ref.length}`);
  let bad = 0;
  let worst = -1;
  let worstRatio = 0;
  for (let i = 0; i < ref.length; i++) {
    if (got[i] === ref[i]) continue;
    const err = Math.abs(got[i]! - ref[i]!);
    const t = tol(i);
    if (!(err <= t)) {
      bad++;
      const ratio = Number.isNaN(err) ? Infinity : err / t;
      if (ratio >= worstRatio) {
        worstRatio = ratio;
        worst = i;
      }
    }
  }
  if (bad > 0) {
    throw new Error(
      `${name}: ${bad}/${ref.length} elements outside their bound; worst at flat index ${worst}: ` +
        `got ${got[worst]}, ref ${ref[worst]}, |diff| ${Math.abs(got[worst]! - ref[worst]!).toExponential(3)} > tol ${tol(worst).toExponential(3)}`,
    );
  }
}

/** A deterministic generator of f32 test data (mulberry32; independent of the library PRNG under test elsewhere). */
export class TestRng {
  private s: number;
  constructor(seed: number) {
    this.s = (seed >>> 0) || 1;
  }
  /** Uniform in [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  /** n values uniform in [lo, hi), rounded to f32. */
  f32(n: number, lo = -1, hi = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * this.next();
    return out;
  }
}

/** An f64 copy of an f32 array (exact). */
export const f64 = (x: Float32Array): Float64Array => Float64Array.from(x);

/** |x| elementwise, as f64. */
export const absOf = (x: ArrayLike<number>): Float64Array => Float64Array.from(x as ArrayLike<number>, Math.abs);
