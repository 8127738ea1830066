/**
 * Routing compared as sets: sorting by expert id keeps every (expert, weight) pair, a reordered reference passes
 * with a note (strict with orderedRouting), a different set fails with the rows counted; the decision margins
 * of routingMargins match their definition (perturbations below half the margin never change the choice).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareTraces, type ComparableTensor } from '../../src/verify/compare.js';
import { routingMargins, sortRoutingRows, withinDecisionNoise, type RouterShape } from '../../src/verify/routing_sets.js';

const routingArb = fc
  .record({ N: fc.integer({ min: 1, max: 6 }), E: fc.integer({ min: 2, max: 9 }) })
  .chain(({ N, E }) =>
    fc.integer({ min: 1, max: E }).chain((K) =>
      fc.record({
        N: fc.constant(N),
        K: fc.constant(K),
        rows: fc.array(fc.shuffledSubarray(Array.from({ length: E }, (_, e) => e), { minLength: K, maxLength: K }), { minLength: N, maxLength: N }),
        weights: fc.array(fc.double({ min: 0, max: 3, noNaN: true }), { minLength: N * K, maxLength: N * K }),
      }),
    ),
  );

describe('sortRoutingRows', () => {
  it('sorts each row by expert id and keeps every (expert, weight) pair (property)', () => {
    fc.assert(
      fc.property(routingArb, ({ N, K, rows, weights }) => {
        const idx = rows.flat();
        const s = sortRoutingRows(idx, weights, N, K);
        let moved = 0;
        for (let t = 0; t < N; t++) {
          const got = Array.from({ length: K }, (_, k) => [s.indices[t * K + k]!, s.weights![t * K + k]!] as const);
          for (let k = 1; k < K; k++) expect(got[k]![0]).toBeGreaterThan(got[k - 1]![0]);
          const want = Array.from({ length: K }, (_, k) => [idx[t * K + k]!, weights[t * K + k]!] as const).sort((a, b) => a[0] - b[0]);
          expect(got).toEqual(want);
          if (rows[t]!.some((e, k) => e !== got[k]![0])) moved++;
        }
        expect(s.reordered).toBe(moved);
      }),
      { seed: 1101, numRuns: 200 },
    );
  });
});

const i32 = (shape: number[], data: number[]): ComparableTensor => ({ dtype: 'I32', shape, data: Int32Array.from(data) });
const f64 = (shape: number[], data: number[]): ComparableTensor => ({ dtype: 'F64', shape, data: Float64Array.from(data) });

describe('compareTraces: routing as sets', () => {
  const lib = new Map([
    ['model.layers.1.mlp.gate:indices', i32([3, 2], [4, 1, 0, 5, 2, 3])],
    ['model.layers.1.mlp.gate:weights', f64([3, 2], [0.7, 0.3, 0.6, 0.4, 0.55, 0.45])],
  ]);
  // the same sets, two rows in another order (torch.topk(sorted=False)), weights moved with their experts
  const unordered = new Map([
    ['model.layers.1.mlp.gate:indices', i32([3, 2], [1, 4, 5, 0, 2, 3])],
    ['model.layers.1.mlp.gate:weights', f64([3, 2], [0.3, 0.7, 0.4, 0.6, 0.55, 0.45])],
  ]);

  it('a reordered reference passes with a note; --ordered-routing fails it', () => {
    const r = compareTraces(lib, unordered);
    expect(r.allPassed).toBe(true);
    expect(r.results[0]!.notes.join()).toContain('expert order differs in 2 of 3 rows');
    const strict = compareTraces(lib, unordered, { orderedRouting: true });
    expect(strict.firstDivergent).toBe('model.layers.1.mlp.gate:indices');
  });

  it('weights are carried with their experts: swapped weights fail', () => {
    const swapped = new Map(unordered);
    swapped.set('model.layers.1.mlp.gate:weights', f64([3, 2], [0.7, 0.3, 0.4, 0.6, 0.55, 0.45]));
    const r = compareTraces(lib, swapped);
    expect(r.firstDivergent).toBe('model.layers.1.mlp.gate:weights');
  });

  it('a different expert set fails, rows counted', () => {
    const other = new Map(unordered);
    other.set('model.layers.1.mlp.gate:indices', i32([3, 2], [1, 4, 5, 1, 2, 3]));
    const r = compareTraces(lib, other);
    expect(r.firstDivergent).toBe('model.layers.1.mlp.gate:indices');
    expect(r.results[0]!.reasons[0]).toBe('1 of 3 rows select a different expert set (first: row 1)');
  });
});

/** The official Gate's choice from biased scores (brute force over sorted lists). */
function choose(sel: number[], r: RouterShape, hasBias: boolean): number[] {
  const per = r.nRoutedExperts / r.nGroup;
  const gs = Array.from({ length: r.nGroup }, (_, g) => {
    const v = sel.slice(g * per, (g + 1) * per).sort((a, b) => b - a);
    return hasBias ? v[0]! + v[1]! : v[0]!;
  });
  const kept = gs.map((v, g) => [v, g] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, r.topkGroup).map(([, g]) => g);
  return sel
    .map((v, e) => [kept.includes(Math.floor(e / per)) ? v : -Infinity, e] as const)
    .sort((a, b) => b[0] - a[0] || a[1] - b[1])
    .slice(0, r.numExpertsPerTok)
    .map(([, e]) => e)
    .sort((a, b) => a - b);
}

describe('routingMargins', () => {
  const shape: RouterShape = { nRoutedExperts: 8, nGroup: 4, topkGroup: 2, numExpertsPerTok: 3 };
  // distinct values on a 1e-3 grid (random doubles tie too often for a margin to exist)
  const scores = fc.uniqueArray(fc.integer({ min: -1000, max: 2000 }), { minLength: 8, maxLength: 8 }).map((v) => v.map((x) => x / 1000));

  it('perturbing every score by less than a quarter of the smaller margin never changes the expert set (property)', () => {
    fc.assert(
      fc.property(scores, fc.array(fc.double({ min: -1, max: 1, noNaN: true }), { minLength: 8, maxLength: 8 }), fc.boolean(), (sel, dir, bias) => {
        const m = routingMargins(sel, shape, bias);
        const bound = Math.min(m.expert / 2, m.group / 4);
        fc.pre(bound > 1e-9 && Number.isFinite(bound));
        // expert margin: two values each moved < m/2; group score: sums of two, each moved < m/4 per value
        const moved = sel.map((v, i) => v + 0.99 * bound * dir[i]!);
        expect(choose(moved, shape, bias)).toEqual(choose(sel, shape, bias));
      }),
      { seed: 1102, numRuns: 300 },
    );
  });

  it('without group limiting: the margin is exactly the K-th minus the (K+1)-th score, and moving past it flips', () => {
    const flat: RouterShape = { nRoutedExperts: 5, nGroup: 1, topkGroup: 1, numExpertsPerTok: 2 };
    const sel = [0.1, 0.9, 0.5, 0.45, 0.2];
    const m = routingMargins(sel, flat, false);
    expect(m.group).toBe(Infinity);
    expect(m.expert).toBeCloseTo(0.05, 15);
    expect(choose(sel, flat, false)).toEqual([1, 2]);
    expect(choose([0.1, 0.9, 0.5, 0.5 + 1e-9, 0.2], flat, false)).toEqual([1, 3]);
    // K = E: nothing left to swap in
    expect(routingMargins([1, 2], { nRoutedExperts: 2, nGroup: 1, topkGroup: 1, numExpertsPerTok: 2 }, false).expert).toBe(Infinity);
  });
});

describe('withinDecisionNoise', () => {
  // 3 groups of 2, keep 2 groups, top-2, with a bias (group score = top-2 sum)
  const shape: RouterShape = { nRoutedExperts: 6, nGroup: 3, topkGroup: 2, numExpertsPerTok: 2 };
  const sel = [0.1, 0.05, 0.62, 0.3, 0.6, 0.4]; // groups: 0.15, 0.92, 1.0 → keep 2 and 1; choose 2 (0.62) and 4 (0.6)
  it('a swap at the boundary is within the noise; experts from a cut group far below are not', () => {
    expect(choose(sel, shape, true)).toEqual([2, 4]);
    expect(withinDecisionNoise(sel, shape, true, [2, 4], [2, 5], 0.1)).toBe(true); // 0.6 − 0.4 = 0.2 ≤ 2·0.1
    expect(withinDecisionNoise(sel, shape, true, [2, 4], [2, 5], 0.09)).toBe(false);
    // a 0 group mask picks experts 0, 1 of the cut group 0: group score 0.15 is 0.77 below the kept 0.92
    expect(withinDecisionNoise(sel, shape, true, [2, 4], [0, 1], 0.2)).toBe(false);
    expect(withinDecisionNoise(sel, shape, true, [2, 4], [2, 4], 0)).toBe(true);
  });
});
