// Four-lane f32 exp and sigmoid for the softmax, cross-entropy and SwiGLU kernels.
//
// exp(x) = 2ⁿ·eʳ with n = round(x·log₂e) and r = x − n·ln2 ∈ [−ln2/2, ln2/2] by a two-constant Cody–Waite
// reduction (n·LN2_HI is exact: LN2_HI has 9 significant bits and |n| ≤ 151), then eʳ = 1 + r + r²·P(r) with
// Cephes' degree-5 minimax P, evaluated in f32 with plain multiplies and adds (no FMA: both wasm builds give the
// same bits). 2ⁿ is applied as 2^⌊n/2⌋ · 2^(n−⌊n/2⌋), two exact powers, so results that overflow to ∞ or land in
// the subnormal range are rounded once, by the last multiply. x is clamped to [−104, 89] first (exp(−104) rounds
// to +0 and exp(89) to +∞, as the true values do); NaN propagates (f32x4.min/max return NaN).
//
// Error bound: ≤ 1 ulp of the exact value for every f32 input (so ≤ 2⁻²³·eˣ relative for normal results, ≤ 2⁻¹⁴⁹
// absolute for subnormal ones), measured over all of them by benchmarks/exp_ulp.mjs (worst 0.990 ulp) and checked
// on a sweep by checkExp in tests/kernels/suite.ts.

const LOG2E: f32 = 1.44269504088896341;
const LN2_HI: f32 = 0.693359375;
const LN2_LO: f32 = -2.12194440e-4;
const P0: f32 = 1.9875691500e-4;
const P1: f32 = 1.3981999507e-3;
const P2: f32 = 8.3334519073e-3;
const P3: f32 = 4.1665795894e-2;
const P4: f32 = 1.6666665459e-1;
const P5: f32 = 5.0000001201e-1;
const X_MIN: f32 = -104;
const X_MAX: f32 = 89;

// 2^e as f32 for an integer e in [−126, 127] in each lane
// @ts-ignore: decorator
@inline function pow2i(e: v128): v128 {
  return i32x4.shl(i32x4.add(e, i32x4.splat(127)), 23);
}

/** eˣ in each lane (≤ 1 ulp, see the header). */
// @ts-ignore: decorator
@inline export function exp4(x: v128): v128 {
  x = f32x4.min(f32x4.max(x, f32x4.splat(X_MIN)), f32x4.splat(X_MAX));
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(LOG2E)));
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(LN2_HI)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(LN2_LO)));
  const z = f32x4.mul(r, r);
  let p = f32x4.add(f32x4.mul(f32x4.splat(P0), r), f32x4.splat(P1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(P2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(P3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(P4));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(P5));
  // eʳ = (P·r² + r) + 1: the last add rounds once near 1
  const er = f32x4.add(f32x4.add(f32x4.mul(p, z), r), f32x4.splat(1));
  const ni = i32x4.trunc_sat_f32x4_s(n);
  const n1 = i32x4.shr_s(ni, 1);
  return f32x4.mul(f32x4.mul(er, pow2i(n1)), pow2i(i32x4.sub(ni, n1)));
}

/** σ(z) = 1/(1 + e^(−z)) in each lane: exp4's ≤ 1 ulp, then the add and the divide round once each. */
// @ts-ignore: decorator
@inline export function sigmoid4(z: v128): v128 {
  return f32x4.div(f32x4.splat(1), f32x4.add(f32x4.splat(1), exp4(f32x4.neg(z))));
}

/** eˣ in lane 0 of a scalar (the tails of the vector loops use the same arithmetic). */
// @ts-ignore: decorator
@inline export function exp1(x: f32): f32 {
  return f32x4.extract_lane(exp4(f32x4.splat(x)), 0);
}

// @ts-ignore: decorator
@inline export function sigmoid1(z: f32): f32 {
  return f32x4.extract_lane(sigmoid4(f32x4.splat(z)), 0);
}

/** y[i] = eˣ⁽ⁱ⁾ for n f32 values at byte addresses x, y (y may equal x). */
export function expKernel(x: usize, y: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const q = <usize>i * 4;
    v128.store(y + q, exp4(v128.load(x + q)));
  }
  for (; i < n; i++) {
    const q = <usize>i * 4;
    store<f32>(y + q, exp1(load<f32>(x + q)));
  }
}
