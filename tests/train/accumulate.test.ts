import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GradientAccumulator, countTargets } from '../../src/train/accumulate.js';
import { Tensor } from '../../src/tensor.js';
import { centralDifference } from '../helpers/finite_difference.js';
import { ToyBigram } from './toy_model.js';

const V = 6;

function randomBatch(rng: () => number, B: number, T: number, ignoreRate: number): { ids: Int32Array; labels: Int32Array; B: number; T: number } {
  const ids = Int32Array.from({ length: B * (T + 1) }, () => Math.floor(rng() * V));
  const labels = new Int32Array(B * T);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) labels[b * T + t] = rng() < ignoreRate ? -100 : ids[b * (T + 1) + t + 1]!;
  return { ids, labels, B, T };
}

function rowsOf(batch: { ids: Int32Array; labels: Int32Array; T: number }, from: number, to: number): { ids: Int32Array; labels: Int32Array; B: number; T: number } {
  const T = batch.T;
  return { ids: batch.ids.slice(from * (T + 1), to * (T + 1)), labels: batch.labels.slice(from * T, to * T), B: to - from, T };
}

function mulberry(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('toy model gradients (so the accumulation test rests on a correct gradient)', () => {
  it('match central finite differences in f64', () => {
    const model = new ToyBigram(V, 3, 'float64', 5);
    const batch = randomBatch(mulberry(3), 2, 5, 0.3);
    const { grads } = model.lossAndGrads(batch);
    const h = 1e-6;
    for (const name of ['embed.weight', 'scale.weight']) {
      const w = model.weights.get(name)!.data;
      for (let i = 0; i < w.length; i += 5) {
        // central difference: O(h²) truncation ≈ 1e-12, cancellation ≈ 1e-16/h = 1e-10
        const fd = centralDifference(() => model.lossAndGrads(batch).loss.main, w, i, h);
        expect(Math.abs(fd - grads.get(name)!.data[i]!)).toBeLessThan(1e-8);
      }
    }
  });
});

describe('gradient accumulation (SPEC §5.8)', () => {
  it('micro-batches weighted by N_k/N_global equal the one large batch (f64, ≤ 1e-12 relative)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 2, max: 4 }), fc.integer({ min: 2, max: 6 }), (seed, k, T) => {
        const model = new ToyBigram(V, 3, 'float64', seed % 100);
        const rng = mulberry(seed);
        const B = 2 * k;
        const big = randomBatch(rng, B, T, 0.35);
        const N = countTargets(big);
        fc.pre(N > 0);
        const full = model.lossAndGrads(big);
        const acc = new GradientAccumulator(model.weights, ['embed.weight', 'scale.weight']);
        for (let j = 0; j < k; j++) {
          const micro = rowsOf(big, 2 * j, 2 * j + 2);
          const r = model.lossAndGrads(micro);
          expect(r.targets).toBe(countTargets(micro));
          acc.add(r.grads, r.targets / N);
        }
        for (const name of ['embed.weight', 'scale.weight']) {
          const want = full.grads.get(name)!.data;
          const got = acc.grads.get(name)!.data;
          let maxRef = 0;
          for (const x of want) maxRef = Math.max(maxRef, Math.abs(x));
          // k partial sums re-associated: a few ulp of the largest entry
          for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!)).toBeLessThanOrEqual(1e-12 * maxRef);
        }
      }),
      { seed: 2024, numRuns: 60 },
    );
  });

  it('plain 1/n_micro weighting is wrong when micro-batches hold different target counts', () => {
    const model = new ToyBigram(V, 3, 'float64', 9);
    const big = randomBatch(mulberry(11), 4, 6, 0);
    big.labels.fill(-100, 0, 9); // first micro-batch keeps 3 of 12 targets, the second all 12
    const full = model.lossAndGrads(big);
    const acc = new GradientAccumulator(model.weights, ['embed.weight']);
    for (const micro of [rowsOf(big, 0, 2), rowsOf(big, 2, 4)]) acc.add(model.lossAndGrads(micro).grads, 1 / 2);
    const want = full.grads.get('embed.weight')!.data;
    const got = acc.grads.get('embed.weight')!.data;
    let maxDiff = 0;
    for (let i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i]! - want[i]!));
    expect(maxDiff).toBeGreaterThan(1e-3);
  });

  it('counts targets from labels or from ids[:, 1:]; zero() clears; shape mismatches name the tensor', () => {
    expect(countTargets({ ids: Int32Array.from([1, 2, 3, 4, -100, 5]), B: 2, T: 2 })).toBe(3);
    expect(countTargets({ ids: new Int32Array(6), B: 2, T: 2, labels: Int32Array.from([-100, 1, 2, -100]) })).toBe(2);
    const params = new Map([['a', Tensor.from([2], [1, 2], 'float64')]]);
    const acc = new GradientAccumulator(params);
    acc.add(new Map([['a', Tensor.from([2], [1, 1], 'float64')]]), 0.5);
    expect([...acc.grads.get('a')!.data]).toEqual([0.5, 0.5]);
    acc.zero();
    expect([...acc.grads.get('a')!.data]).toEqual([0, 0]);
    expect(() => acc.add(new Map([['a', Tensor.from([3], [1, 1, 1], 'float64')]]), 1)).toThrow(/'a'/);
  });
});
