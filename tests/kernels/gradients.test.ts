import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsKernels as K } from '../../src/kernels/js.js';
import { TestRng } from './bounds.js';

/**
 * Central finite-difference checks, in f64, of every backward kernel against its forward
 * (the js kernels: the wasm backward kernels are compared with these in suite.ts).
 * L(x) = Σ r ⊙ f(x) for a random r; ∂L/∂x_i ≈ (L(x + h e_i) − L(x − h e_i)) / 2h.
 * With h = 1e-5 the truncation error is O(h²·|f'''|) ≈ 1e-10 and the rounding error
 * O(ε·|L|/h) ≈ 1e-11, so a tolerance of 1e-7·(1 + |g|) is safe and still catches any
 * wrong term (those are O(1)).
 */
const H = 1e-5;
const TOL = 1e-7;

function rand64(rng: TestRng, n: number, lo = -1, hi = 1): Float64Array {
  return Float64Array.from(rng.f32(n, lo, hi));
}

function dotWith(r: Float64Array, y: Float64Array): number {
  let s = 0;
  for (let i = 0; i < r.length; i++) s += r[i]! * y[i]!;
  return s;
}

function expectGradient(name: string, x: Float64Array, loss: () => number, analytic: Float64Array): void {
  for (let i = 0; i < x.length; i++) {
    const saved = x[i]!;
    x[i] = saved + H;
    const lp = loss();
    x[i] = saved - H;
    const lm = loss();
    x[i] = saved;
    const numeric = (lp - lm) / (2 * H);
    const err = Math.abs(numeric - analytic[i]!);
    if (!(err <= TOL * (1 + Math.abs(numeric)))) {
      throw new Error(`${name}: element ${i}: analytic ${analytic[i]} vs central difference ${numeric} (|diff| ${err.toExponential(2)})`);
    }
  }
}

const shape = fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 9 }), fc.integer());

describe('finite-difference gradient checks (js kernels, f64)', () => {
  it('softmaxBackward', () => {
    fc.assert(
      fc.property(shape, ([rows, cols, seed]) => {
        const rng = new TestRng(seed);
        const x = rand64(rng, rows * cols, -3, 3);
        const r = rand64(rng, rows * cols);
        const y = new Float64Array(rows * cols);
        const loss = (): number => (K.softmaxForward(x, y, rows, cols), dotWith(r, y));
        loss();
        const dx = new Float64Array(rows * cols);
        K.softmaxBackward(y, r, dx, rows, cols);
        expectGradient('softmax dx', x, loss, dx);
      }),
      { seed: 101, numRuns: 25 },
    );
  });

  it('rmsnormBackward (dx and dw)', () => {
    fc.assert(
      fc.property(shape, ([rows, cols, seed]) => {
        const rng = new TestRng(seed);
        const x = rand64(rng, rows * cols, -2, 2);
        const w = rand64(rng, cols, 0.5, 1.5);
        const r = rand64(rng, rows * cols);
        const y = new Float64Array(rows * cols);
        const rstd = new Float64Array(rows);
        const loss = (): number => (K.rmsnormForward(x, w, y, rstd, rows, cols, 1e-6), dotWith(r, y));
        loss();
        const dx = new Float64Array(rows * cols);
        const dw = new Float64Array(cols);
        K.rmsnormBackward(x, w, rstd, r, dx, dw, rows, cols);
        expectGradient('rmsnorm dx', x, loss, dx);
        expectGradient('rmsnorm dw', w, loss, dw);
      }),
      { seed: 102, numRuns: 25 },
    );
  });

  it('swigluBackward (da and db)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.integer(), (n, seed) => {
        const rng = new TestRng(seed);
        const a = rand64(rng, n, -6, 6);
        const b = rand64(rng, n, -2, 2);
        const r = rand64(rng, n);
        const y = new Float64Array(n);
        const loss = (): number => (K.swigluForward(a, b, y, n), dotWith(r, y));
        const da = new Float64Array(n);
        const db = new Float64Array(n);
        K.swigluBackward(a, b, r, da, db, n);
        expectGradient('swiglu da', a, loss, da);
        expectGradient('swiglu db', b, loss, db);
      }),
      { seed: 103, numRuns: 25 },
    );
  });

  it('rope backward = inverse rotation of the upstream gradient', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 6 }), fc.integer(), (rows, half, seed) => {
        const rng = new TestRng(seed);
        const dim = 2 * half;
        const maxPos = 10;
        const cos = new Float64Array(maxPos * half);
        const sin = new Float64Array(maxPos * half);
        for (let p = 0; p < maxPos; p++) {
          for (let i = 0; i < half; i++) {
            cos[p * half + i] = Math.cos(p * 0.3 ** i);
            sin[p * half + i] = Math.sin(p * 0.3 ** i);
          }
        }
        const pos = Int32Array.from({ length: rows }, () => rng.int(0, maxPos - 1));
        const x = rand64(rng, rows * dim);
        const r = rand64(rng, rows * dim);
        const y = new Float64Array(rows * dim);
        const loss = (): number => (K.rope(x, y, cos, sin, pos, rows, dim, false), dotWith(r, y));
        const dx = new Float64Array(rows * dim);
        K.rope(r, dx, cos, sin, pos, rows, dim, true);
        expectGradient('rope dx', x, loss, dx);
      }),
      { seed: 104, numRuns: 25 },
    );
  });

  it('crossEntropyBackward (with an ignored row and a scale)', () => {
    fc.assert(
      fc.property(shape, ([rows, vocab, seed]) => {
        const rng = new TestRng(seed);
        const logits = rand64(rng, rows * vocab, -4, 4);
        const targets = Int32Array.from({ length: rows }, (_, i) => (i === 1 ? -1 : rng.int(0, vocab - 1)));
        const losses = new Float64Array(rows);
        const scale = 0.7;
        const loss = (): number => scale * K.crossEntropyForward(logits, targets, losses, rows, vocab, -1).sum;
        const d = new Float64Array(rows * vocab);
        K.crossEntropyBackward(logits, targets, d, rows, vocab, -1, scale);
        expectGradient('cross-entropy dlogits', logits, loss, d);
      }),
      { seed: 105, numRuns: 25 },
    );
  });

  it("linear layer y = x·Wᵀ ('nt'): dx via 'nn', dW via 'tn' (accumulating)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 6 }), fc.integer(), (rows, inF, outF, seed) => {
        const rng = new TestRng(seed);
        const x = rand64(rng, rows * inF);
        const W = rand64(rng, outF * inF);
        const r = rand64(rng, rows * outF);
        const y = new Float64Array(rows * outF);
        const loss = (): number => (K.matmul('nt', x, W, y, rows, outF, inF), dotWith(r, y));
        const dx = rand64(rng, rows * inF);
        const dx0 = dx.slice();
        const dW = new Float64Array(outF * inF);
        K.matmul('nn', r, W, dx, rows, inF, outF, true);
        K.matmul('tn', r, x, dW, outF, inF, rows, true);
        for (let i = 0; i < dx.length; i++) dx[i] = dx[i]! - dx0[i]!; // accumulate: subtract what was there
        expectGradient('linear dx', x, loss, dx);
        expectGradient('linear dW', W, loss, dW);
      }),
      { seed: 106, numRuns: 25 },
    );
  });

  it('the checker itself rejects a wrong gradient', () => {
    const x = Float64Array.of(0.3, -0.2);
    expect(() => expectGradient('wrong', x, () => x[0]! * x[0]! + x[1]!, Float64Array.of(0.6, 2))).toThrow(/element 1/);
  });
});
