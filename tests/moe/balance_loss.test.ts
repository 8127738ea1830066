/**
 * The complementary sequence-wise balance loss (SPEC §5.3) against a direct transcription of
 * its definition, and its invariants.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Routing } from '../../src/model/gate.js';
import { gateForward } from '../../src/model/gate.js';
import { Random } from '../../src/random.js';
import { Tensor } from '../../src/tensor.js';
import { sequenceBalanceLoss } from '../../src/model/balance_loss.js';
import { randomTensor } from '../helpers/random.js';
import { moeConfig } from './helpers.js';

const caseArb = fc.record({
  E: fc.integer({ min: 2, max: 10 }),
  kFrac: fc.double({ min: 0, max: 1, noNaN: true }),
  B: fc.integer({ min: 1, max: 3 }),
  T: fc.integer({ min: 1, max: 8 }),
  seed: fc.integer({ min: 0, max: 1 << 30 }),
});

/** Random routing: distinct random experts per token, positive random scores. */
function randomRouting(E: number, K: number, N: number, rng: Random): Routing {
  const indices = new Int32Array(N * K);
  for (let t = 0; t < N; t++) {
    const perm = Array.from({ length: E }, (_, e) => e);
    for (let i = E - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [perm[i], perm[j]] = [perm[j]!, perm[i]!];
    }
    indices.set(perm.slice(0, K), t * K);
  }
  const scores = Float64Array.from({ length: N * E }, () => 0.01 + rng.uniform());
  return { indices, scores, weights: new Float64Array(N * K), load: new Int32Array(E) };
}

describe('sequenceBalanceLoss', () => {
  it('equals α·mean_b Σ_e f_e·P_e written out from the definition', () => {
    fc.assert(
      fc.property(caseArb, ({ E, kFrac, B, T, seed }) => {
        const K = 1 + Math.min(E - 1, Math.floor(kFrac * E));
        const config = moeConfig({ d: 1, E, K, G: 1, topkGroup: 1, I: 1, shared: 0, scoring: 'sigmoid', bias: false, R: 1 });
        const routing = randomRouting(E, K, B * T, new Random(seed));
        let ref = 0;
        for (let b = 0; b < B; b++) {
          let sum = 0;
          for (let e = 0; e < E; e++) {
            let count = 0;
            let P = 0;
            for (let t = 0; t < T; t++) {
              const r = b * T + t;
              if (Array.from(routing.indices.subarray(r * K, (r + 1) * K)).includes(e)) count++;
              const row = routing.scores.subarray(r * E, (r + 1) * E);
              P += row[e]! / Array.from(row).reduce((a, v) => a + v, 0) / T;
            }
            sum += ((E / (K * T)) * count) * P;
          }
          ref += (1e-4 * sum) / B;
        }
        // f64, sums of ≤ 80 terms of size ≤ 10: 1e-14 relative
        expect(Math.abs(sequenceBalanceLoss(config, routing, B, T).loss - ref)).toBeLessThanOrEqual(1e-14 * ref);
      }),
      { seed: 901, numRuns: 200 },
    );
  });

  it('Σ_e f_e·P_e = 1 under perfectly uniform routing (and whenever f or s is uniform)', () => {
    fc.assert(
      fc.property(caseArb, fc.boolean(), ({ E, kFrac, B, seed }, uniformScores) => {
        const K = 1 + Math.min(E - 1, Math.floor(kFrac * E));
        const T = E; // T·K assignments spread evenly: token t takes experts t·K … t·K + K − 1 (mod E)
        const config = moeConfig({ d: 1, E, K, G: 1, topkGroup: 1, I: 1, shared: 0, scoring: 'sigmoid', bias: false, R: 1 });
        const routing = randomRouting(E, K, B * T, new Random(seed));
        for (let r = 0; r < B * T; r++) for (let k = 0; k < K; k++) routing.indices[r * K + k] = ((r % T) * K + k) % E;
        if (uniformScores) routing.scores.fill(0.5);
        const alpha = 1;
        expect(sequenceBalanceLoss(config, routing, B, T, alpha).loss).toBeCloseTo(1, 13);
        // uniform scores make Σ f·P = 1 whatever the counts
        const skewed = randomRouting(E, K, B * T, new Random(seed + 1));
        skewed.scores.fill(0.3);
        expect(sequenceBalanceLoss(config, skewed, B, T, alpha).loss).toBeCloseTo(1, 13);
      }),
      { seed: 902, numRuns: 100 },
    );
  });

  it('is the mean over sequences of the per-sequence loss, linear in α', () => {
    const config = moeConfig({ d: 1, E: 5, K: 2, G: 1, topkGroup: 1, I: 1, shared: 0, scoring: 'sigmoid', bias: false, R: 1 });
    const rng = new Random(11);
    const B = 3;
    const T = 4;
    const routing = randomRouting(5, 2, B * T, rng);
    const per = [0, 1, 2].map((b) => {
      const r: Routing = {
        indices: routing.indices.slice(b * T * 2, (b + 1) * T * 2),
        scores: routing.scores.slice(b * T * 5, (b + 1) * T * 5),
        weights: new Float64Array(T * 2),
        load: new Int32Array(5),
      };
      return sequenceBalanceLoss(config, r, 1, T, 0.5).loss;
    });
    const all = sequenceBalanceLoss(config, routing, B, T, 0.5).loss;
    expect(all).toBeCloseTo((per[0]! + per[1]! + per[2]!) / 3, 15);
    expect(sequenceBalanceLoss(config, routing, B, T, 1).loss).toBeCloseTo(2 * all, 15);
  });

  it('literalTopk counts the top-K of the unbiased scores, which differs from the biased selection', () => {
    // 3 experts, K = 1; scores favour expert 0 but the bias makes the router choose expert 2
    const config = moeConfig({ d: 3, E: 3, K: 1, G: 1, topkGroup: 1, I: 1, shared: 0, scoring: 'sigmoid', bias: true, R: 1 });
    const eye = Tensor.from([3, 3], [1, 0, 0, 0, 1, 0, 0, 0, 1], 'float64');
    const w = { weight: eye, e_score_correction_bias: Tensor.from([3], [0, 0, 0.5], 'float64') };
    const x = new Float64Array([1, 0, 0.5]); // s ≈ [0.73, 0.5, 0.62]; ŝ ≈ [0.73, 0.5, 1.12]
    const { routing } = gateForward(config, w, x, 1);
    expect(Array.from(routing.indices)).toEqual([2]);
    const s = routing.scores;
    const S = s[0]! + s[1]! + s[2]!;
    // f = E/(K·T)·count = 3 for the counted expert; Σ f·P = 3·s_e/S
    expect(sequenceBalanceLoss(config, routing, 1, 1, 1).loss).toBeCloseTo((3 * s[2]!) / S, 15);
    expect(sequenceBalanceLoss(config, routing, 1, 1, 1, { literalTopk: true }).loss).toBeCloseTo((3 * s[0]!) / S, 15);
  });

  it('dscores has the shape of the scores and is zero when α = 0', () => {
    const config = moeConfig({ d: 2, E: 4, K: 2, G: 1, topkGroup: 1, I: 1, shared: 0, scoring: 'sigmoid', bias: false, R: 1 });
    const x = randomTensor(new Random(2), [6, 2], 'float64', 1).data;
    const w = { weight: randomTensor(new Random(3), [4, 2], 'float64', 1) };
    const { routing } = gateForward(config, w, x, 6);
    const r = sequenceBalanceLoss(config, routing, 2, 3, 0);
    expect(r.dscores.length).toBe(24);
    expect(r.dscores.every((v) => v === 0)).toBe(true);
    expect(() => sequenceBalanceLoss(config, routing, 2, 4)).toThrow(/B·T·E/);
  });
});
