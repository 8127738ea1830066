/**
 * Auxiliary-loss-free balancing (SPEC §5.2, issue 4 evidence): the sign rule, the centred
 * variant, load statistics, and the skewed-router experiment (also scripts/bias-balance-experiment.mjs).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ModelConfig } from '../../src/model/config.js';
import { gateForward, type GateWeights } from '../../src/model/gate.js';
import { Random } from '../../src/random.js';
import { Tensor } from '../../src/tensor.js';
import { loadStats, updateRouterBias } from '../../src/train/bias_update.js';
import { moeConfig } from './helpers.js';

describe('updateRouterBias', () => {
  it('b_e += γ·sign(mean − load_e), sign(0) = 0; γ = 0 changes nothing', () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: 20 }), { minLength: 1, maxLength: 12 }), fc.constantFrom(0, 0.001, 0.25), (load, gamma) => {
        const E = load.length;
        const b0 = Float64Array.from({ length: E }, (_, e) => e * 0.01 - 0.03);
        const b = b0.slice();
        updateRouterBias(b, load, gamma, { biasDtype: 'model' }); // the f64 rule; float32: tests/train/bias_dtype.test.ts
        const mean = load.reduce((a, v) => a + v, 0) / E;
        for (let e = 0; e < E; e++) {
          // the sign from exact rational comparison with the mean
          const s = load[e]! * E === mean * E ? 0 : load[e]! < mean ? 1 : -1;
          expect(b[e]).toBe(b0[e]! + gamma * s);
        }
      }),
      { seed: 801, numRuns: 200 },
    );
    const b = new Float64Array([0.5, 0.5, 0.5]);
    updateRouterBias(b, [3, 3, 3]);
    expect(Array.from(b)).toEqual([0.5, 0.5, 0.5]); // perfectly balanced: sign(0) = 0
  });

  it('centred: Σ b stays constant, and routing is the same as with the plain rule', () => {
    const config = moeConfig({ d: 6, E: 8, K: 2, G: 4, topkGroup: 2, I: 2, shared: 0, scoring: 'sigmoid', bias: true, R: 2.5 });
    const { w, x, N } = skewedRouter(config, 128, 2, 3);
    const plain: GateWeights = { weight: w.weight, e_score_correction_bias: Tensor.zeros([8], 'float64') };
    const centred: GateWeights = { weight: w.weight, e_score_correction_bias: Tensor.zeros([8], 'float64') };
    for (let s = 0; s < 60; s++) {
      const rp = gateForward(config, plain, x, N).routing;
      const rc = gateForward(config, centred, x, N).routing;
      expect(Array.from(rc.indices)).toEqual(Array.from(rp.indices));
      updateRouterBias(plain.e_score_correction_bias!, rp.load, 0.01, { biasDtype: 'model' });
      updateRouterBias(centred.e_score_correction_bias!, rc.load, 0.01, { centred: true, biasDtype: 'model' });
      const sum = Array.from(centred.e_score_correction_bias!.data).reduce((a, v) => a + v, 0);
      expect(Math.abs(sum)).toBeLessThan(1e-14); // 8 terms of size ≤ 0.6 in f64
    }
  });

  it('loadStats: counts, mean, max/mean and coefficient of variation', () => {
    const s = loadStats(new Int32Array([6, 2, 2, 2]));
    expect(s).toMatchObject({ counts: [6, 2, 2, 2], total: 12, mean: 3, max: 6, min: 2, maxOverMean: 2 });
    expect(s.cv).toBeCloseTo(Math.sqrt((9 + 1 + 1 + 1) / 4) / 3, 15);
    expect(loadStats([0, 0]).maxOverMean).toBeNaN();
  });
});

/**
 * A router skewed on purpose: tokens x ~ N(0, 1) + u (a shared unit direction u) and W_g rows of
 * 4 experts get + c·u, so their logits are ≈ c higher for most tokens. Bias starts at 0.
 */
function skewedRouter(config: ModelConfig, N: number, c: number, seed: number): { w: GateWeights; x: Float64Array; N: number } {
  const { hiddenSize: d, nRoutedExperts: E } = config;
  const rng = new Random(seed);
  const u = new Float64Array(d);
  rng.fillNormal(u);
  const norm = Math.hypot(...u);
  for (let j = 0; j < d; j++) u[j] = u[j]! / norm;
  const x = new Float64Array(N * d);
  rng.fillNormal(x);
  for (let t = 0; t < N; t++) for (let j = 0; j < d; j++) x[t * d + j] = x[t * d + j]! + u[j]!;
  const weight = Tensor.zeros([E, d], 'float64');
  rng.fillNormal(weight.data, 1 / Math.sqrt(d));
  for (const e of [0, 1, 2, 5]) for (let j = 0; j < d; j++) weight.data[e * d + j] = weight.data[e * d + j]! + c * u[j]!;
  return { w: { weight, e_score_correction_bias: Tensor.zeros([E], 'float64') }, x, N };
}

describe('bias balancing experiment (skewed router, V3-like 16 experts, 4 groups keep 2, top-4)', () => {
  const config = moeConfig({ d: 16, E: 16, K: 4, G: 4, topkGroup: 2, I: 4, shared: 0, scoring: 'sigmoid', bias: true, R: 2.5 });
  const trajectory = (gamma: number, steps: number): number[] => {
    const { w, x, N } = skewedRouter(config, 512, 2, 7);
    const out: number[] = [];
    for (let s = 0; s <= steps; s++) {
      const { routing } = gateForward(config, w, x, N);
      out.push(loadStats(routing.load).maxOverMean);
      updateRouterBias(w.e_score_correction_bias!, routing.load, gamma);
    }
    return out;
  };

  it('γ = 0.001 (V3’s value; sigmoid scores live in (0, 1) as in V3) brings max/mean below 1.3 within 300 steps and keeps it there', () => {
    const t = trajectory(0.001, 400);
    expect(t[0]).toBeGreaterThan(2.5); // the skew is real
    const first = t.findIndex((v) => v < 1.3);
    expect(first).toBeGreaterThan(0);
    expect(first).toBeLessThanOrEqual(300);
    expect(Math.max(...t.slice(300))).toBeLessThan(1.3);
  });

  it('γ = 0 leaves the skew untouched', () => {
    const t = trajectory(0, 400);
    expect(Math.min(...t)).toBeGreaterThan(2.5);
  });
});
