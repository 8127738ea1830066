/**
 * Property tests of the router against a brute-force definition of SPEC §3.8 and its invariants.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ModelConfig } from '../../src/model/config.js';
import { gateForward, type GateWeights } from '../../src/model/gate.js';
import { Random } from '../../src/random.js';
import { Tensor } from '../../src/tensor.js';
import { randomTensor } from '../helpers/random.js';
import { moeConfig, randomGate } from './helpers.js';

/** Random router configs: E = G·groupSize, topkGroup ≤ G, K ≤ topkGroup·groupSize. */
const routerArb = fc
  .record({
    G: fc.integer({ min: 1, max: 4 }),
    groupSize: fc.integer({ min: 2, max: 4 }),
    tgFrac: fc.double({ min: 0, max: 1, noNaN: true }),
    kFrac: fc.double({ min: 0, max: 1, noNaN: true }),
    scoring: fc.constantFrom('sigmoid' as const, 'softmax' as const),
    bias: fc.boolean(),
    norm: fc.boolean(),
    R: fc.constantFrom(1, 1.5, 2.5),
    d: fc.integer({ min: 1, max: 6 }),
    N: fc.integer({ min: 1, max: 6 }),
    seed: fc.integer({ min: 0, max: 1 << 30 }),
  })
  .map((p) => {
    const topkGroup = 1 + Math.min(p.G - 1, Math.floor(p.tgFrac * p.G));
    const maxK = topkGroup * p.groupSize;
    const K = 1 + Math.min(maxK - 1, Math.floor(p.kFrac * maxK));
    const config = moeConfig({
      d: p.d,
      E: p.G * p.groupSize,
      K,
      G: p.G,
      topkGroup,
      I: 2,
      shared: 0,
      scoring: p.scoring,
      bias: p.bias,
      R: p.R,
      norm: p.norm,
    });
    return { config, N: p.N, seed: p.seed };
  });

function combinations(n: number, k: number): number[][] {
  const out: number[][] = [];
  const rec = (start: number, acc: number[]) => {
    if (acc.length === k) out.push([...acc]);
    else for (let i = start; i < n; i++) rec(i + 1, [...acc, i]);
  };
  rec(0, []);
  return out;
}

/**
 * SPEC §3.8 by enumeration (f64, distinct values assumed): the kept groups are the topk_group-subset
 * with the largest total group score; the experts are the K-subset of allowed experts with the largest
 * total ŝ, listed by descending ŝ; weights from the unbiased scores.
 */
function bruteForceRoute(config: ModelConfig, w: GateWeights, x: Float64Array, t: number): { idx: number[]; weights: number[] } {
  const { nRoutedExperts: E, nGroup: G, topkGroup, numExpertsPerTok: K, hiddenSize: d } = config;
  const logits = Array.from({ length: E }, (_, e) => {
    let s = 0;
    for (let j = 0; j < d; j++) s += x[t * d + j]! * w.weight.data[e * d + j]!;
    return s;
  });
  let s: number[];
  if (config.scoringFunc === 'sigmoid') s = logits.map((l) => 1 / (1 + Math.exp(-l)));
  else {
    const m = Math.max(...logits);
    const ex = logits.map((l) => Math.exp(l - m));
    const z = ex.reduce((a, b) => a + b, 0);
    s = ex.map((v) => v / z);
  }
  const b = w.e_score_correction_bias;
  const sel = s.map((v, e) => v + (b ? b.data[e]! : 0));
  const gs = E / G;
  const groupScore = Array.from({ length: G }, (_, g) => {
    const vals = sel.slice(g * gs, (g + 1) * gs).sort((p, q) => q - p);
    return b ? vals[0]! + vals[1]! : vals[0]!;
  });
  let bestGroups: number[] = [];
  let bestSum = -Infinity;
  for (const c of combinations(G, topkGroup)) {
    const sum = c.reduce((a, g) => a + groupScore[g]!, 0);
    if (sum > bestSum) [bestSum, bestGroups] = [sum, c];
  }
  const allowed = bestGroups.flatMap((g) => Array.from({ length: gs }, (_, i) => g * gs + i));
  let best: number[] = [];
  bestSum = -Infinity;
  for (const c of combinations(allowed.length, K)) {
    const sum = c.reduce((a, i) => a + sel[allowed[i]!]!, 0);
    if (sum > bestSum) [bestSum, best] = [sum, c.map((i) => allowed[i]!)];
  }
  const idx = best.sort((p, q) => sel[q]! - sel[p]!);
  const raw = idx.map((e) => s[e]!);
  const z = config.normTopkProb ? raw.reduce((a, v) => a + v, 0) : 1;
  return { idx, weights: raw.map((v) => (v / z) * config.routedScalingFactor) };
}

describe('gateForward', () => {
  it('matches the brute-force definition (group subsets and expert subsets enumerated)', () => {
    fc.assert(
      fc.property(routerArb, ({ config, N, seed }) => {
        const rng = new Random(seed);
        // biases ±0.3 so the bias actually reorders experts and groups, and some ŝ are negative
        const w = randomGate(rng, config, 'float64', 1, 0.3);
        const x = randomTensor(rng, [N, config.hiddenSize], 'float64', 1).data as Float64Array;
        const { routing } = gateForward(config, w, x, N);
        const K = config.numExpertsPerTok;
        for (let t = 0; t < N; t++) {
          const ref = bruteForceRoute(config, w, x, t);
          expect(Array.from(routing.indices.subarray(t * K, (t + 1) * K))).toEqual(ref.idx);
          for (let k = 0; k < K; k++) {
            // same formula in f64, different operation order: 1e-14 relative
            expect(Math.abs(routing.weights[t * K + k]! - ref.weights[k]!)).toBeLessThanOrEqual(1e-14 * config.routedScalingFactor);
          }
        }
      }),
      { seed: 501, numRuns: 300 },
    );
  });

  it('every token gets K distinct experts; load counts them; sigmoid+norm weights sum to routed_scaling_factor', () => {
    fc.assert(
      fc.property(routerArb, fc.constantFrom('float32' as const, 'float64' as const), ({ config, N, seed }, dtype) => {
        const rng = new Random(seed);
        const w = randomGate(rng, config, dtype, 1, 0.3);
        const x = randomTensor(rng, [N, config.hiddenSize], dtype, 1).data;
        const { routing } = gateForward(config, w, x, N);
        const { numExpertsPerTok: K, nRoutedExperts: E } = config;
        const load = new Int32Array(E);
        for (let t = 0; t < N; t++) {
          const row = Array.from(routing.indices.subarray(t * K, (t + 1) * K));
          expect(new Set(row).size).toBe(K);
          for (const e of row) {
            expect(e >= 0 && e < E).toBe(true);
            load[e]!++;
          }
          if (config.normTopkProb) {
            let sum = 0;
            for (let k = 0; k < K; k++) sum += routing.weights[t * K + k]!;
            // K terms rounded to the dtype: f32 ulp·K, f64 1e-14
            const tol = (dtype === 'float32' ? 1e-6 : 1e-14) * config.routedScalingFactor;
            expect(Math.abs(sum - config.routedScalingFactor)).toBeLessThanOrEqual(tol);
          }
        }
        expect(Array.from(routing.load)).toEqual(Array.from(load));
      }),
      { seed: 502, numRuns: 200 },
    );
  });

  it('changing the bias changes only which experts are used, never the weight formula (SPEC §7 claim 1)', () => {
    fc.assert(
      fc.property(
        routerArb.filter((c) => c.config.topkMethod === 'noaux_tc'),
        ({ config, N, seed }) => {
          const rng = new Random(seed);
          const w1 = randomGate(rng, config, 'float64', 1, 0.3);
          const w2: GateWeights = { weight: w1.weight, e_score_correction_bias: randomTensor(rng, [config.nRoutedExperts], 'float64', 0.5) };
          const x = randomTensor(rng, [N, config.hiddenSize], 'float64', 1).data;
          const r1 = gateForward(config, w1, x, N).routing;
          const r2 = gateForward(config, w2, x, N).routing;
          // the scores never see the bias
          expect(Array.from(r2.scores)).toEqual(Array.from(r1.scores));
          const K = config.numExpertsPerTok;
          const E = config.nRoutedExperts;
          for (const r of [r1, r2]) {
            for (let t = 0; t < N; t++) {
              // w = R·s[I] (/Σ s[I]) from the unbiased scores, whatever the bias chose
              const s = Array.from(r.indices.subarray(t * K, (t + 1) * K), (e) => r.scores[t * E + e]!);
              const z = config.normTopkProb ? s.reduce((a, v) => a + v, 0) : 1;
              for (let k = 0; k < K; k++) {
                expect(Math.abs(r.weights[t * K + k]! - (s[k]! / z) * config.routedScalingFactor)).toBeLessThanOrEqual(1e-14);
              }
            }
          }
        },
      ),
      { seed: 503, numRuns: 200 },
    );
  });

  it('masks rejected groups with −∞, not 0: an allowed negative ŝ beats a masked expert', () => {
    // E = 4 in 2 groups of 2, keep 1 group, K = 2. W = I so ℓ = x; pick s directly via x = logit(s).
    const config = moeConfig({ d: 4, E: 4, K: 2, G: 2, topkGroup: 1, I: 2, shared: 0, scoring: 'sigmoid', bias: true, R: 2 });
    const s = [0.95, 0.1, 0.2, 0.2];
    const b = [0, -0.3, -0.25, -0.25]; // ŝ = [0.95, −0.2, −0.05, −0.05]: group sums 0.75 vs −0.1
    const logit = (p: number) => Math.log(p / (1 - p));
    const eye = Tensor.from([4, 4], [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1], 'float64');
    const w: GateWeights = { weight: eye, e_score_correction_bias: Tensor.from([4], b, 'float64') };
    const { routing } = gateForward(config, w, Float64Array.from(s, logit), 1);
    // −∞ masking keeps expert 1 (ŝ = −0.2); 0-masking (HF) would pick expert 2 (masked ŝ 0 > −0.2)
    expect(Array.from(routing.indices)).toEqual([0, 1]);
    expect(routing.weights[0]).toBeCloseTo((2 * 0.95) / 1.05, 12);
    expect(routing.weights[1]).toBeCloseTo((2 * 0.1) / 1.05, 12);
  });

  it('tie-break: equal ŝ → lower expert index first; equal group scores → lower group kept', () => {
    // all-zero input: every logit is 0, every score 0.5, every group ties
    const config = moeConfig({ d: 3, E: 6, K: 2, G: 3, topkGroup: 1, I: 2, shared: 0, scoring: 'sigmoid', bias: false, R: 1 });
    const w: GateWeights = { weight: randomTensor(new Random(1), [6, 3], 'float64', 1) };
    const r0 = gateForward(config, w, new Float64Array(3 * 2), 2).routing;
    expect(Array.from(r0.indices)).toEqual([0, 1, 0, 1]);
    // property: duplicated W_g rows give exactly equal ŝ; along each token's list ŝ is non-increasing
    // and equal ŝ appear in increasing expert index
    fc.assert(
      fc.property(routerArb, fc.array(fc.nat(), { minLength: 1, maxLength: 4 }), ({ config: c, N, seed }, dups) => {
        const rng = new Random(seed);
        const cfg = { ...c, topkMethod: 'greedy' as const };
        const gw = randomGate(rng, cfg, 'float64', 1);
        const E = cfg.nRoutedExperts;
        const d = cfg.hiddenSize;
        for (const u of dups) {
          const src = u % E;
          const dst = (u >> 3) % E;
          gw.weight.data.copyWithin(dst * d, src * d, (src + 1) * d);
        }
        const x = randomTensor(rng, [N, d], 'float64', 1).data;
        const { routing } = gateForward(cfg, gw, x, N);
        const K = cfg.numExpertsPerTok;
        for (let t = 0; t < N; t++) {
          for (let k = 1; k < K; k++) {
            const a = routing.indices[t * K + k - 1]!;
            const bb = routing.indices[t * K + k]!;
            const sa = routing.scores[t * E + a]!;
            const sb = routing.scores[t * E + bb]!;
            // within one kept group list order is by ŝ; ties in lower index order
            if (sa === sb) expect(a).toBeLessThan(bb);
            else expect(sa).toBeGreaterThan(sb);
          }
        }
      }),
      { seed: 504, numRuns: 200 },
    );
  });

  it('rejects inconsistent configs and weights with typed errors naming the key', () => {
    const config = moeConfig({ d: 2, E: 6, K: 2, G: 4, topkGroup: 1, I: 2, shared: 0, scoring: 'sigmoid', bias: false, R: 1 });
    const w: GateWeights = { weight: Tensor.zeros([6, 2], 'float64') };
    expect(() => gateForward(config, w, new Float64Array(2), 1)).toThrow(/n_group/);
    const c2 = { ...config, nGroup: 3, numExpertsPerTok: 3 };
    expect(() => gateForward(c2, w, new Float64Array(2), 1)).toThrow(/num_experts_per_tok/);
    const c3 = { ...config, nGroup: 1, topkMethod: 'noaux_tc' as const };
    expect(() => gateForward(c3, w, new Float64Array(2), 1)).toThrow(/e_score_correction_bias/);
  });
});
