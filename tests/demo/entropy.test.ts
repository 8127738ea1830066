/** unigramEntropy: H = −Σ p ln p against closed forms and invariants. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { unigramEntropy } from '../../src/demo/entropy.js';
import { InputError } from '../../src/errors.js';

describe('unigramEntropy', () => {
  it('matches closed forms', () => {
    expect(unigramEntropy([7, 7, 7])).toBe(0);
    // k equally frequent symbols: ln k (f64 sum of k equal terms: a few ulp)
    expect(unigramEntropy([0, 1, 2, 3, 0, 1, 2, 3])).toBeCloseTo(Math.log(4), 14);
    // p = (1/3, 2/3)
    expect(unigramEntropy([5, 9, 9])).toBeCloseTo(-(1 / 3) * Math.log(1 / 3) - (2 / 3) * Math.log(2 / 3), 14);
    expect(() => unigramEntropy([])).toThrow(InputError);
  });

  it('lies in [0, ln(distinct symbols)], is permutation invariant and exactly ln k for k symbols repeated alike', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 20 }), { minLength: 1, maxLength: 200 }), fc.nat(1000), (xs, seed) => {
        const h = unigramEntropy(xs);
        const distinct = new Set(xs).size;
        // 1e-12: rounding of a ≤ 21-term f64 sum of O(1) terms
        expect(h).toBeGreaterThanOrEqual(0);
        expect(h).toBeLessThanOrEqual(Math.log(distinct) + 1e-12);
        const shuffled = [...xs].sort((a, b) => ((a * 7919 + seed) % 101) - ((b * 7919 + seed) % 101));
        expect(unigramEntropy(shuffled)).toBe(h);
        const k = distinct;
        const uniform = [...new Set(xs)].flatMap((v) => [v, v, v]);
        expect(unigramEntropy(uniform)).toBeCloseTo(Math.log(k), 12);
      }),
      { seed: 11, numRuns: 200 },
    );
  });

  it('the bundled corpus has the documented 3.20 nats (4.61 bits) per byte', async () => {
    const { readFileSync } = await import('node:fs');
    const bytes = readFileSync(new URL('../../data/tiny-corpus.txt', import.meta.url));
    const h = unigramEntropy(bytes);
    // data/README.md states 4.61 bits = 3.20 nats per byte (rounded to 2 decimals)
    expect(h).toBeGreaterThan(3.195);
    expect(h).toBeLessThan(3.205);
    expect(h / Math.LN2).toBeCloseTo(4.61, 2);
  });
});
