import { describe, expect, it } from 'vitest';
import { jsKernels as K } from '../../src/kernels/js.js';
import type { MatmulLayout } from '../../src/kernels/kernels.js';
import { expectWithin, TestRng } from './bounds.js';

/**
 * The js kernels are the oracle of everything else, so their forwards are checked here against
 * independent textbook definitions written out in the test (f64; tolerance = a few ulps of
 * double, since both sides compute the same sums in different orders or forms).
 */
const EPS64 = 2 ** -52;

/** op(A)[i,p] and op(B)[p,j] of each layout, read element by element. */
function naiveMatmul(layout: MatmulLayout, a: Float64Array, b: Float64Array, m: number, n: number, k: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) {
        const aip = layout === 'tn' ? a[p * m + i]! : a[i * k + p]!;
        const bpj = layout === 'nt' ? b[j * k + p]! : b[p * n + j]!;
        s += aip * bpj;
      }
      c[i * n + j] = s;
    }
  }
  return c;
}

describe('js kernels against their textbook definitions (f64)', () => {
  it('matmul in all layouts, with accumulate', () => {
    const rng = new TestRng(21);
    for (const layout of ['nn', 'nt', 'tn'] as const) {
      const [m, n, k] = [5, 7, 9];
      const a = Float64Array.from(rng.f32(m * k));
      const b = Float64Array.from(rng.f32(k * n));
      const c = Float64Array.from(rng.f32(m * n));
      const c0 = c.slice();
      K.matmul(layout, a, b, c, m, n, k, true);
      const ref = naiveMatmul(layout, a, b, m, n, k).map((v, i) => v + c0[i]!);
      expectWithin(c, ref, () => 4 * k * EPS64, `matmul ${layout}`);
    }
  });

  it('rope is multiplication by e^{iθ} of the complex numbers x[2i] + i·x[2i+1]', () => {
    const x = Float64Array.of(1, 2, -3, 0.5);
    const theta = [0.7, -1.9];
    const cos = Float64Array.from(theta, Math.cos);
    const sin = Float64Array.from(theta, Math.sin);
    const y = new Float64Array(4);
    K.rope(x, y, cos, sin, Int32Array.of(0), 1, 4, false);
    for (let i = 0; i < 2; i++) {
      // (x0 + i x1)(cos θ + i sin θ)
      const re = x[2 * i]! * Math.cos(theta[i]!) - x[2 * i + 1]! * Math.sin(theta[i]!);
      const im = x[2 * i]! * Math.sin(theta[i]!) + x[2 * i + 1]! * Math.cos(theta[i]!);
      expect(y[2 * i]).toBeCloseTo(re, 14);
      expect(y[2 * i + 1]).toBeCloseTo(im, 14);
    }
  });

  it('rmsnorm, swiglu and cross-entropy on hand-checkable inputs', () => {
    const y = new Float64Array(2);
    const rstd = new Float64Array(1);
    K.rmsnormForward(Float64Array.of(3, 4), Float64Array.of(1, 2), y, rstd, 1, 2, 0);
    // mean(9, 16) = 12.5 → rstd = 1/√12.5
    expect(rstd[0]).toBeCloseTo(1 / Math.sqrt(12.5), 15);
    expect(Array.from(y)).toEqual([3 / Math.sqrt(12.5), (2 * 4) / Math.sqrt(12.5)].map((v) => expect.closeTo(v, 14)));

    const s = new Float64Array(1);
    K.swigluForward(Float64Array.of(2), Float64Array.of(3), s, 1);
    expect(s[0]).toBeCloseTo((2 / (1 + Math.exp(-2))) * 3, 14);

    const losses = new Float64Array(1);
    const { sum, count } = K.crossEntropyForward(Float64Array.of(1, 2, 3), Int32Array.of(0), losses, 1, 3, -100);
    expect(count).toBe(1);
    expect(sum).toBeCloseTo(-Math.log(Math.exp(1) / (Math.exp(1) + Math.exp(2) + Math.exp(3))), 14);
  });

  it('adamw first step: θ·(1 − lr·wd) − lr·g/(|g| + eps) (m̂ = g, v̂ = g²), torch semantics', () => {
    const p = Float64Array.of(0.5, -1);
    const g = Float64Array.of(0.2, -3e-9);
    const hp = { lr: 0.01, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 1 };
    K.adamw(p, g, new Float64Array(2), new Float64Array(2), 2, hp);
    for (const [i, p0] of [0.5, -1].entries()) {
      const gi = g[i]!;
      expect(p[i]).toBeCloseTo(p0 * (1 - 0.01 * 0.1) - (0.01 * gi) / (Math.abs(gi) + 1e-8), 14);
    }
  });
});
