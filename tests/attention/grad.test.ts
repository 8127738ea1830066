import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { mlaBackward, mlaForward, zerosLikeMLAWeights, type AttnImpl, type MLAWeights } from '../../src/model/attention.js';
import { rmsnormBackward, rmsnormForward } from '../../src/model/rmsnorm.js';
import { buildRopeTables, ropeBackward, ropeForward } from '../../src/model/rope.js';
import type { Tensor } from '../../src/tensor.js';
import { Random } from '../../src/random.js';
import { centralDifference, dot } from '../helpers/finite_difference.js';
import { randomArray } from '../helpers/random.js';
import { mlaConfig, randomMLAWeights, type MLAShape } from './helpers.js';

const H_FD = 1e-5;

/**
 * Central differences of L(θ) = ⟨g, f(θ)⟩ at `count` sampled indices of `param`, compared with
 * the analytic gradient. Tolerance: central-difference truncation O(h²) ≈ 1e-10 plus f64
 * rounding ≈ 1e-16·|L|/h ≈ 1e-10 for the O(1) losses here; 1e-7·(1 + max|grad|) leaves a wide margin
 * while any wrong term (O(1) relative) fails.
 */
function checkFD(name: string, param: Float64Array, analytic: ArrayLike<number>, loss: () => number, rng: Random, count = 12): void {
  let scale = 1;
  for (let i = 0; i < analytic.length; i++) scale = Math.max(scale, Math.abs(analytic[i]!));
  const n = param.length;
  const idx = n <= count ? Array.from({ length: n }, (_, i) => i) : Array.from({ length: count }, () => rng.int(n));
  for (const i of idx) {
    const fd = centralDifference(loss, param, i, H_FD);
    const err = Math.abs(fd - analytic[i]!);
    if (err > 1e-7 * scale) throw new Error(`${name}[${i}]: finite difference ${fd}, analytic ${analytic[i]}, |diff| ${err.toExponential(3)}`);
  }
}

const shapeArb: fc.Arbitrary<MLAShape> = fc.record({
  hidden: fc.integer({ min: 3, max: 10 }),
  heads: fc.integer({ min: 1, max: 3 }),
  qLoraRank: fc.oneof(fc.constant(0), fc.integer({ min: 2, max: 6 })),
  kvLoraRank: fc.integer({ min: 2, max: 6 }),
  nope: fc.integer({ min: 1, max: 4 }),
  rope: fc.integer({ min: 1, max: 3 }).map((h) => 2 * h),
  v: fc.integer({ min: 1, max: 4 }),
  yarn: fc.option(
    fc.record({
      factor: fc.constant(4),
      originalMaxPositionEmbeddings: fc.constant(16),
      betaFast: fc.constant(32),
      betaSlow: fc.constant(1),
      mscale: fc.constant(1),
      mscaleAllDim: fc.constant(1),
    }),
    { nil: null },
  ),
});

describe('finite differences (f64)', () => {
  it('rmsnorm: dx and dw', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 9 }), fc.nat(1000), (rows, cols, seed) => {
        const x = randomArray(rows * cols, seed, 'float64') as Float64Array;
        const w = randomArray(cols, seed + 1, 'float64') as Float64Array;
        const g = randomArray(rows * cols, seed + 2, 'float64');
        const { rstd } = rmsnormForward(x, w, rows, cols, 1e-6);
        const dx = new Float64Array(rows * cols);
        const dw = new Float64Array(cols);
        rmsnormBackward(x, w, rstd, g, dx, dw, rows, cols);
        const loss = () => dot(g, rmsnormForward(x, w, rows, cols, 1e-6).y);
        const rng = new Random(seed);
        checkFD('rmsnorm dx', x, dx, loss, rng);
        checkFD('rmsnorm dw', w, dw, loss, rng);
      }),
      { seed: 201, numRuns: 30 },
    );
  });

  it('rope: dx (rotation by −θ) and accumulation into dx', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 4 }).map((h) => 2 * h), fc.nat(1000), (rows, R, seed) => {
        const config = mlaConfig({ hidden: 4, heads: 1, qLoraRank: 0, kvLoraRank: 2, nope: 1, rope: R, v: 1 });
        const tables = buildRopeTables(config, 50, 'float64');
        const pos = Int32Array.from({ length: rows }, (_, r) => (seed + 7 * r) % 50);
        const x = randomArray(rows * R, seed, 'float64') as Float64Array;
        const g = randomArray(rows * R, seed + 1, 'float64');
        const dx = new Float64Array(rows * R).fill(0.5);
        ropeBackward(tables, g, pos, rows, R, dx);
        for (let i = 0; i < dx.length; i++) dx[i] = dx[i]! - 0.5; // ropeBackward accumulates
        checkFD('rope dx', x, dx, () => dot(g, ropeForward(tables, x, pos, rows, R)), new Random(seed));
      }),
      { seed: 202, numRuns: 30 },
    );
  });

  for (const attn of ['naive', 'absorb'] as const) {
    it(`mlaBackward (forward saved by the ${attn} path): dx and every weight`, () => {
      fc.assert(
        fc.property(shapeArb, fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 0, max: 3 }), fc.nat(1000), (shape, B, S, startPos, seed) => {
          const config = mlaConfig(shape);
          const d = config.hiddenSize;
          const w = randomMLAWeights(config, seed, 'float64');
          const x = randomArray(B * S * d, seed + 1, 'float64') as Float64Array;
          const g = randomArray(B * S * d, seed + 2, 'float64');
          const rope = buildRopeTables(config, startPos + S, 'float64');
          const opts = { startPos, rope, attn: attn as AttnImpl };
          const { saved } = mlaForward(config, w, x, B, S, { ...opts, save: true });
          const grads = zerosLikeMLAWeights(w);
          const dx = mlaBackward(config, w, grads, saved!, g);
          const loss = () => dot(g, mlaForward(config, w, x, B, S, opts).out);
          const rng = new Random(seed + 3);
          checkFD('dx', x, dx, loss, rng);
          for (const name of Object.keys(w) as (keyof MLAWeights)[]) {
            checkFD(name, (w[name] as Tensor).data as Float64Array, (grads[name] as Tensor).data, loss, rng);
          }
        }),
        { seed: attn === 'naive' ? 203 : 204, numRuns: 25 },
      );
    });
  }

  it('backward accumulates into the gradient buffers', () => {
    const config = mlaConfig({ hidden: 6, heads: 2, qLoraRank: 4, kvLoraRank: 3, nope: 2, rope: 2, v: 3 });
    const w = randomMLAWeights(config, 5, 'float64');
    const x = randomArray(2 * 3 * 6, 6, 'float64');
    const g = randomArray(2 * 3 * 6, 7, 'float64');
    const { saved } = mlaForward(config, w, x, 2, 3, { startPos: 0, rope: buildRopeTables(config, 3, 'float64'), attn: 'naive', save: true });
    const once = zerosLikeMLAWeights(w);
    mlaBackward(config, w, once, saved!, g);
    const twice = zerosLikeMLAWeights(w);
    mlaBackward(config, w, twice, saved!, g);
    mlaBackward(config, w, twice, saved!, g);
    for (const name of Object.keys(w) as (keyof MLAWeights)[]) {
      const a = (once[name] as Tensor).data;
      const b = (twice[name] as Tensor).data;
      for (let i = 0; i < a.length; i++) expect(b[i]).toBeCloseTo(2 * a[i]!, 12);
    }
  });
});
