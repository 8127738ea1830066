import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { portableLog, Random } from '../src/random.js';

describe('Random', () => {
  it('is deterministic and resumable from its state', () => {
    const a = new Random(42);
    for (let i = 0; i < 10; i++) a.normal();
    const b = Random.fromState(a.getState());
    const xs = Array.from({ length: 20 }, () => a.uniform());
    const ys = Array.from({ length: 20 }, () => b.uniform());
    expect(ys).toEqual(xs);
  });

  it('uniform draws lie in [0, 1) and normal draws have mean ≈ 0, variance ≈ 1', () => {
    const r = new Random(7);
    const n = 200_000;
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < n; i++) {
      const u = r.uniform();
      expect(u >= 0 && u < 1).toBe(true);
      const z = r.normal();
      s += z;
      s2 += z * z;
    }
    // standard errors: mean 1/√n ≈ 0.0022, variance √(2/n) ≈ 0.0032; allow 5σ
    expect(Math.abs(s / n)).toBeLessThan(0.012);
    expect(Math.abs(s2 / n - 1)).toBeLessThan(0.016);
  });

  it('portableLog agrees with Math.log to 2 ulp-ish (1e-15 relative)', () => {
    fc.assert(
      fc.property(fc.double({ min: 1e-300, max: 1e300, noNaN: true }), (x) => {
        const ref = Math.log(x);
        expect(Math.abs(portableLog(x) - ref)).toBeLessThanOrEqual(1e-15 * Math.max(1, Math.abs(ref)));
      }),
      { seed: 1, numRuns: 2000 },
    );
  });
});
