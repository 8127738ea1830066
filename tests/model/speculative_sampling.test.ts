/**
 * Speculative sampling with MTP (SPEC §4.4): the accept/residual rule reproduces p exactly (analytic sum over
 * drafts); end to end on a micro model it is seeded and deterministic, reports its acceptance rate, and every
 * main-model logits row it used equals the full forward over prompt + output at that position (the caches were
 * trimmed correctly after rejections); as temperature → 0 it is greedy.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  sampleFromDistribution,
  samplingDistribution,
  speculativeAcceptProbability,
  speculativeResidual,
  speculativeVerify,
} from '../../src/model/generate.js';
import { DeepSeekV3 } from '../../src/model/model.js';
import { Random } from '../../src/random.js';
import type { DType } from '../../src/tensor.js';
import { expectClose } from '../helpers/close.js';
import { microConfig, randomIds, randomWeights } from './helpers.js';

/** A probability vector over n tokens with some exact zeros (top-p truncation), from non-negative weights. */
const arbDist = (n: number): fc.Arbitrary<Float64Array> =>
  fc
    .array(fc.oneof(fc.constant(0), fc.double({ min: 1e-3, max: 1, noNaN: true })), { minLength: n, maxLength: n })
    .filter((w) => w.some((x) => x > 0))
    .map((w) => {
      const s = w.reduce((a, b) => a + b, 0);
      return Float64Array.from(w, (x) => x / s);
    });

const arbPair = fc.integer({ min: 1, max: 6 }).chain((n) => fc.tuple(arbDist(n), arbDist(n), fc.boolean()));

describe('speculative sampling rule', () => {
  it('Σ over drafts t̂ of q(t̂)·[a·δ_t̂ + (1 − a)·residual] == p (analytic, 1e-12)', () => {
    fc.assert(
      fc.property(arbPair, ([p, qIn, same]) => {
        const q = same ? p : qIn; // p = q: every draft accepted, empty residual
        const out = new Float64Array(p.length);
        for (let t = 0; t < q.length; t++) {
          if (q[t]! === 0) continue; // never drafted
          const a = speculativeAcceptProbability(p, q, t);
          expect(a).toBeGreaterThanOrEqual(0);
          expect(a).toBeLessThanOrEqual(1);
          const r = speculativeResidual(p, q);
          out[t]! += q[t]! * a;
          for (let i = 0; i < p.length; i++) out[i]! += q[t]! * (1 - a) * r[i]!;
        }
        // a sum of ≤ 6·7 products of numbers ≤ 1: rounding ~1e-15
        expectClose(out, p, 'output distribution', { atol: 1e-12 });
      }),
      { seed: 44, numRuns: 300 },
    );
  });

  it('the residual is norm(max(0, p − q)) and a draft with q = 0 is refused', () => {
    const p = [0.5, 0.3, 0.2, 0];
    const q = [0.2, 0.5, 0.1, 0.2];
    // max(0, p − q) = [0.3, 0, 0.1, 0], Z = 0.4
    expectClose(speculativeResidual(p, q), [0.75, 0, 0.25, 0], 'residual', { atol: 1e-15 });
    expect(speculativeAcceptProbability(p, q, 1)).toBeCloseTo(0.6, 15);
    expect(speculativeAcceptProbability(p, q, 0)).toBe(1);
    expect(speculativeAcceptProbability(p, q, 3)).toBe(0);
    expect(() => speculativeAcceptProbability(q, p, 3)).toThrow(/draft token 3/);
  });

  it('speculativeVerify: accept iff u < a; on rejection one more uniform inverts the residual', () => {
    fc.assert(
      fc.property(arbPair, fc.integer({ min: 0, max: 2 ** 31 }), ([p, q], seed) => {
        const rng = new Random(seed);
        const draft = sampleFromDistribution(q, rng);
        const replay = Random.fromState(rng.getState());
        const v = speculativeVerify(p, q, draft, rng);
        const u = replay.uniform();
        expect(v.accepted).toBe(u < Math.min(1, p[draft]! / q[draft]!));
        if (v.accepted) expect(v.token).toBe(draft);
        else {
          // inversion by hand over norm(max(0, p − q))
          const r = Array.from(p, (x, i) => Math.max(0, x - q[i]!));
          const z = r.reduce((a, b) => a + b, 0);
          let w = replay.uniform() * z;
          let want = -1;
          for (let i = 0; i < r.length && want < 0; i++) if (r[i]! > 0 && (w -= r[i]!) < 0) want = i;
          if (want >= 0) expect(v.token).toBe(want); // else the draw fell in the last rounding ulp
          expect(p[v.token]! - q[v.token]!).toBeGreaterThan(0);
        }
        expect(rng.getState()).toEqual(replay.getState());
      }),
      { seed: 45, numRuns: 300 },
    );
  });

  it('samplingDistribution is the renormalised top-p nucleus of softmax(logits/T)', () => {
    const logits = [2, 0.5, 1, -1, 1];
    const T = 0.7;
    const e = logits.map((x) => Math.exp((x - 2) / T));
    const s = e.reduce((a, b) => a + b, 0);
    const full = e.map((x) => x / s);
    expectClose(samplingDistribution(logits, T, 1), full, 'topP 1', { atol: 1e-15 });
    // sorted by logit (ties → lower index): 0, 2, 4, 1, 3; nucleus for topP = 0.75 is the shortest prefix reaching it
    let k = 0;
    let mass = 0;
    const order = [0, 2, 4, 1, 3];
    while (mass < 0.75) mass += full[order[k++]!]!;
    const want = new Array<number>(5).fill(0);
    for (let i = 0; i < k; i++) want[order[i]!] = full[order[i]!]! / mass;
    expect(k).toBeGreaterThan(1);
    expect(k).toBeLessThan(5);
    expectClose(samplingDistribution(logits, T, 0.75), want, 'topP 0.75', { atol: 1e-15 });
    expect(Array.from(samplingDistribution(logits, 0, 1))).toEqual([1, 0, 0, 0, 0]);
  });
});

function microModel(seed: number, dtype: DType): DeepSeekV3 {
  const c = microConfig();
  return new DeepSeekV3(c, randomWeights(c, dtype, seed));
}

describe('speculative sampling end to end', () => {
  // f64: cached vs full forward differ only in the summation split of the same dot products (~1e-15 observed);
  // f32: the same with 2^-24 rounding over reductions of length ≤ 24
  const TOL: Record<DType, number> = { float64: 1e-12, float32: 1e-5 };
  for (const dtype of ['float64', 'float32'] as const) {
    for (const attn of ['naive', 'absorb'] as const) {
      it(`seeded, deterministic, acceptance reported, cached logits == full forward (${dtype}, ${attn})`, () => {
        let acc = 0;
        let rej = 0;
        for (const seed of [1, 2, 3]) {
          const model = microModel(seed, dtype);
          const V = model.config.vocabSize;
          const prompt = randomIds(1, 4, V, seed)[0]!;
          const rows: [number, Float64Array][] = [];
          const opts = { maxNewTokens: 14, attn, speculative: 'mtp', temperature: 1, topP: 0.95, seed: 7 * seed } as const;
          const g = model.generate(prompt, { ...opts, onMainLogits: (pos, l) => rows.push([pos, Float64Array.from(l)]) });
          const again = model.generate(prompt, opts);
          expect(again).toEqual(g);
          expect(g.tokens.length).toBe(14);
          expect(g.drafted).toBeGreaterThan(0);
          expect(g.acceptanceRate).toBe(g.accepted / g.drafted);
          expect(g.forwardCalls).toBe(1 + g.drafted);
          acc += g.accepted;
          rej += g.drafted - g.accepted;
          // one row per confirmed position, in order, from the prompt's last position on
          const n = prompt.length;
          expect(rows.map((r) => r[0])).toEqual(rows.map((_, i) => n - 1 + i));
          expect(rows.length).toBeGreaterThanOrEqual(g.tokens.length);
          const full = model.forward([[...prompt, ...g.tokens]], { attn: 'naive' }).logits.data;
          for (const [pos, row] of rows) expectClose(row, full.subarray(pos * V, (pos + 1) * V), `logits at position ${pos} (seed ${seed})`, { atolOfMax: TOL[dtype] });
          // another seed draws another stream
          expect(model.generate(prompt, { ...opts, seed: 7 * seed + 1 }).tokens).not.toEqual(g.tokens);
        }
        // both branches (bonus token after an acceptance, residual after a rejection) were exercised
        expect(acc).toBeGreaterThan(0);
        expect(rej).toBeGreaterThan(0);
      });
    }
  }

  it('temperature → 0 (1e-6, no ties in random f64 logits) equals greedy, with the same drafts and acceptances', () => {
    for (const seed of [1, 2, 3, 4]) {
      const model = microModel(seed, 'float64');
      const prompt = randomIds(1, 3, model.config.vocabSize, seed)[0]!;
      const plain = model.generate(prompt, { maxNewTokens: 12 });
      const specGreedy = model.generate(prompt, { maxNewTokens: 12, speculative: 'mtp' });
      const cold = model.generate(prompt, { maxNewTokens: 12, speculative: 'mtp', temperature: 1e-6, topP: 0.9, seed });
      expect(cold.tokens).toEqual(plain.tokens);
      expect([cold.drafted, cold.accepted]).toEqual([specGreedy.drafted, specGreedy.accepted]);
    }
  });
});
