import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { clipGradNorm, globalGradNorm } from '../../src/train/clip.js';
import { Tensor } from '../../src/tensor.js';

describe('global-norm gradient clipping (SPEC §5.6)', () => {
  it('G = sqrt(Σ‖g‖²); scales by maxNorm/(G+1e-6) iff that is < 1', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.double({ min: -5, max: 5, noNaN: true }), { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 4 }),
        fc.double({ min: 0.01, max: 10, noNaN: true }),
        (arrays, maxNorm) => {
          const grads = new Map(arrays.map((a, i) => [`g${i}`, Tensor.from([a.length], a, 'float64')]));
          const flat = arrays.flat();
          const G = Math.sqrt(flat.reduce((s, x) => s + x * x, 0));
          const c = maxNorm / (G + 1e-6);
          const returned = clipGradNorm(grads, maxNorm);
          // same sum in the same order ⇒ identical
          expect(returned).toBe(G);
          const got = [...grads.values()].flatMap((t) => Array.from(t.data));
          const want = c < 1 ? flat.map((x) => x * c) : flat;
          expect(got).toEqual(want);
        },
      ),
      { seed: 31, numRuns: 300 },
    );
  });

  it('leaves gradients alone at or below the threshold; the clipped norm is maxNorm·G/(G+1e-6)', () => {
    const small = new Map([['a', Tensor.from([2], [0.3, 0.4], 'float64')]]); // G = 0.5, c ≈ 2
    expect(clipGradNorm(small, 1.0)).toBe(0.5);
    expect([...small.get('a')!.data]).toEqual([0.3, 0.4]);
    const unit = new Map([['a', Tensor.from([2], [0.6, 0.8], 'float64')]]); // G = 1: c = 1/(1+1e-6) < 1 ⇒ clipped (as torch)
    expect(clipGradNorm(unit, 1.0)).toBe(1);
    expect([...unit.get('a')!.data]).toEqual([0.6 * (1 / (1 + 1e-6)), 0.8 * (1 / (1 + 1e-6))]);
    const big = new Map([['a', Tensor.from([2], [3, 4], 'float64')], ['b', Tensor.from([1, 1], [0], 'float64')]]);
    expect(clipGradNorm(big, 1.0)).toBe(5);
    expect(globalGradNorm(big)).toBeCloseTo(5 / (5 + 1e-6), 15);
  });
});
