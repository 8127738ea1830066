// Elementwise kernels over n f32 values at byte addresses: SwiGLU, RoPE, AdamW, add, scale, axpy.
import { sigmoid1, sigmoid4 } from './vmath';

/** y[i] = silu(a[i])·b[i], silu(z) = z·σ(z), σ from vmath.ts (four lanes; the tail uses the same arithmetic). */
export function swigluForward(a: usize, b: usize, y: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const q = <usize>i * 4;
    const z = v128.load(a + q);
    v128.store(y + q, f32x4.mul(f32x4.mul(z, sigmoid4(z)), v128.load(b + q)));
  }
  for (; i < n; i++) {
    const q = <usize>i * 4;
    const z = load<f32>(a + q);
    store<f32>(y + q, z * sigmoid1(z) * load<f32>(b + q));
  }
}

/** da[i] += dy·b·σ(z)(1 + z(1−σ(z))); db[i] += dy·z·σ(z), z = a[i]. */
export function swigluBackward(a: usize, b: usize, dy: usize, da: usize, db: usize, n: i32): void {
  const one = f32x4.splat(1);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const q = <usize>i * 4;
    const z = v128.load(a + q);
    const sg = sigmoid4(z);
    const g = v128.load(dy + q);
    const dsilu = f32x4.add(one, f32x4.mul(z, f32x4.sub(one, sg)));
    v128.store(da + q, f32x4.add(v128.load(da + q), f32x4.mul(f32x4.mul(f32x4.mul(g, v128.load(b + q)), sg), dsilu)));
    v128.store(db + q, f32x4.add(v128.load(db + q), f32x4.mul(f32x4.mul(g, z), sg)));
  }
  for (; i < n; i++) {
    const q = <usize>i * 4;
    const z = load<f32>(a + q);
    const sg = sigmoid1(z);
    const g = load<f32>(dy + q);
    store<f32>(da + q, load<f32>(da + q) + g * load<f32>(b + q) * sg * (1 + z * (1 - sg)));
    store<f32>(db + q, load<f32>(db + q) + g * z * sg);
  }
}

/**
 * Interleaved-pair RoPE (SPEC §3.4): pair (x[2i], x[2i+1]) of row r rotated by θ with
 * cos/sin from the tables at pos[r]·dim/2 + i; `inverse` rotates by −θ (the backward).
 */
export function rope(x: usize, y: usize, cosT: usize, sinT: usize, pos: usize, rows: i32, dim: i32, inverse: i32): void {
  const half = dim >> 1;
  const sign: f32 = inverse ? -1 : 1;
  for (let r = 0; r < rows; r++) {
    const o = <usize>r * dim * 4;
    const t = <usize>load<i32>(pos + <usize>r * 4) * half * 4;
    for (let i = 0; i < half; i++) {
      const c = load<f32>(cosT + t + <usize>i * 4);
      const s = sign * load<f32>(sinT + t + <usize>i * 4);
      const q = o + <usize>i * 8;
      const x0 = load<f32>(x + q);
      const x1 = load<f32>(x + q, 4);
      store<f32>(y + q, x0 * c - x1 * s);
      store<f32>(y + q, x0 * s + x1 * c, 4);
    }
  }
}

/**
 * One AdamW step in f32, in torch.optim.AdamW's order (SPEC §5.5). The scalars are computed in
 * double on the JS side as torch does in Python: decay = 1 − lr·wd, w = 1 − β₁, oneMinusBeta2,
 * stepSize = lr/(1 − β₁ᵗ), bc2Sqrt = sqrt(1 − β₂ᵗ).
 */
export function adamw(param: usize, grad: usize, m: usize, v: usize, n: i32, decay: f32, w: f32, beta2: f32, oneMinusBeta2: f32, stepSize: f32, bc2Sqrt: f32, eps: f32): void {
  const vDecay = f32x4.splat(decay);
  // torch: exp_avg.lerp_(grad, w) with w = 1 − β₁
  const vW = f32x4.splat(w);
  const vOneMinusW = f32x4.splat(<f32>1 - w);
  const lerpLow = w < 0.5; // torch's lerp switches formula at weight 0.5 for accuracy
  const vB2 = f32x4.splat(beta2);
  const vOneMinusB2 = f32x4.splat(oneMinusBeta2);
  const vNegStep = f32x4.splat(-stepSize);
  const vBc2 = f32x4.splat(bc2Sqrt);
  const vEps = f32x4.splat(eps);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const q = <usize>i * 4;
    const g = v128.load(grad + q);
    // θ ← θ·(1 − lr·wd): decoupled decay with the current lr
    const th = f32x4.mul(v128.load(param + q), vDecay);
    const m0 = v128.load(m + q);
    const d = f32x4.sub(g, m0);
    const m1 = lerpLow ? f32x4.add(m0, f32x4.mul(vW, d)) : f32x4.sub(g, f32x4.mul(d, vOneMinusW));
    // v ← β₂v + (1 − β₂)·g·g  (torch: mul_(β₂).addcmul_(g, g, value=1 − β₂))
    const v1 = f32x4.add(f32x4.mul(v128.load(v + q), vB2), f32x4.mul(f32x4.mul(vOneMinusB2, g), g));
    // denom = sqrt(v)/sqrt(1 − β₂ᵗ) + eps: eps after the bias correction
    const den = f32x4.add(f32x4.div(f32x4.sqrt(v1), vBc2), vEps);
    v128.store(m + q, m1);
    v128.store(v + q, v1);
    v128.store(param + q, f32x4.add(th, f32x4.div(f32x4.mul(vNegStep, m1), den)));
  }
  for (; i < n; i++) {
    const q = <usize>i * 4;
    const g = load<f32>(grad + q);
    const th = load<f32>(param + q) * decay;
    const m0 = load<f32>(m + q);
    const m1 = lerpLow ? m0 + w * (g - m0) : g - (g - m0) * (<f32>1 - w);
    const v1 = load<f32>(v + q) * beta2 + oneMinusBeta2 * g * g;
    const den = Mathf.sqrt(v1) / bc2Sqrt + eps;
    store<f32>(m + q, m1);
    store<f32>(v + q, v1);
    store<f32>(param + q, th + (-stepSize * m1) / den);
  }
}

/** out[i] = a[i] + b[i]. */
export function add(a: usize, b: usize, out: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const q = <usize>i * 4;
    v128.store(out + q, f32x4.add(v128.load(a + q), v128.load(b + q)));
  }
  for (; i < n; i++) {
    const q = <usize>i * 4;
    store<f32>(out + q, load<f32>(a + q) + load<f32>(b + q));
  }
}

/** x[i] *= alpha. */
export function scale(x: usize, alpha: f32, n: i32): void {
  const va = f32x4.splat(alpha);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const q = <usize>i * 4;
    v128.store(x + q, f32x4.mul(v128.load(x + q), va));
  }
  for (; i < n; i++) {
    const q = <usize>i * 4;
    store<f32>(x + q, load<f32>(x + q) * alpha);
  }
}

/** y[i] += alpha·x[i]. */
export function axpy(alpha: f32, x: usize, y: usize, n: i32): void {
  const va = f32x4.splat(alpha);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const q = <usize>i * 4;
    v128.store(y + q, f32x4.add(v128.load(y + q), f32x4.mul(va, v128.load(x + q))));
  }
  for (; i < n; i++) {
    const q = <usize>i * 4;
    store<f32>(y + q, load<f32>(y + q) + alpha * load<f32>(x + q));
  }
}
