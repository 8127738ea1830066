/**
 * Runtime top-k override (issue 13 item 3, docs/components/topk-override.md): `forward(ids, {topk, topkGroup})`,
 * `lossAndGrads(batch, {topk})` and `generate(prompt, {topk})` route with k' experts (g' groups) without changing
 * the config. Checked against (a) the router definition written here (group limit, top-k', renormalisation) and
 * (b) a model whose config says k' (same weights): identical bits, since the override is that config.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import type { ModelConfig } from '../../src/model/config.js';
import { DeepSeekV3 } from '../../src/model/model.js';
import { withRoutingOverride } from '../../src/model/topk.js';
import { microConfig, randomIds, randomWeights } from './helpers.js';

// 8 experts in 4 groups of 2, keep 2 groups, top-2; a dense layer 0, MoE layer 1 and the MTP layer 2
const config: ModelConfig = microConfig({ nRoutedExperts: 8, nGroup: 4, topkGroup: 2, numExpertsPerTok: 2 });
const weights = randomWeights(config, 'float64', 31);
const model = new DeepSeekV3(config, weights);
const withK = (k: number, g = config.topkGroup): DeepSeekV3 => new DeepSeekV3({ ...config, numExpertsPerTok: k, topkGroup: g }, weights);
const bits = (a: ArrayLike<number>): number[] => Array.from(a);

/** The router of SPEC §3.8 for one token, written out: returns the experts (descending ŝ) and their weights. */
function referenceRoute(s: ArrayLike<number>, b: ArrayLike<number>, k: number, g: number): { idx: number[]; w: number[] } {
  const E = config.nRoutedExperts;
  const size = E / config.nGroup;
  const sel = Array.from({ length: E }, (_, e) => s[e]! + b[e]!);
  const groupScore = Array.from({ length: config.nGroup }, (_, q) => {
    const v = sel.slice(q * size, (q + 1) * size).sort((x, y) => y - x);
    return v[0]! + v[1]!;
  });
  const kept = groupScore.map((v, q) => [v, q] as const).sort((x, y) => y[0] - x[0] || x[1] - y[1]).slice(0, g).map(([, q]) => q);
  const cands = sel.map((v, e) => [v, e] as const).filter(([, e]) => kept.includes(Math.floor(e / size)));
  const idx = cands.sort((x, y) => y[0] - x[0] || x[1] - y[1]).slice(0, k).map(([, e]) => e);
  let sum = 0;
  for (const e of idx) sum += s[e]!;
  return { idx, w: idx.map((e) => (s[e]! / sum) * config.routedScalingFactor) };
}

describe('forward(ids, {topk, topkGroup})', () => {
  it("routes every token of every MoE layer to the k' experts of the reference router; weights renormalised over k'", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 0, max: 1e6 }), (k, g, seed) => {
        fc.pre(k <= 2 * g);
        const ids = randomIds(2, 5, config.vocabSize, seed);
        const r = model.forward(ids, { topk: k, topkGroup: g });
        const routing = r.routing.get(1)!;
        const b = weights.get('model.layers.1.mlp.gate.e_score_correction_bias')!.data;
        const E = config.nRoutedExperts;
        expect(routing.indices.length).toBe(10 * k);
        let load = 0;
        for (let t = 0; t < 10; t++) {
          const ref = referenceRoute(routing.scores.subarray(t * E, (t + 1) * E), b, k, g);
          expect(bits(routing.indices.subarray(t * k, (t + 1) * k)), `token ${t}`).toEqual(ref.idx);
          for (let j = 0; j < k; j++) expect(Math.abs(routing.weights[t * k + j]! - ref.w[j]!)).toBeLessThanOrEqual(1e-15 * config.routedScalingFactor);
        }
        for (const n of routing.load) load += n;
        expect(load).toBe(10 * k);
      }),
      { seed: 1303, numRuns: 40 },
    );
  });

  it("equals, bit for bit, a model whose config says k' (logits, hidden states, routing); no override = the config", () => {
    const ids = randomIds(2, 6, config.vocabSize, 7);
    for (const [k, g] of [[1, 2], [3, 2], [4, 2], [5, 3], [8, 4]] as const) {
      const a = model.forward(ids, { topk: k, topkGroup: g });
      const b = withK(k, g).forward(ids);
      expect(bits(a.logits.data), `k'=${k} g'=${g}`).toEqual(bits(b.logits.data));
      expect(bits(a.routing.get(1)!.indices)).toEqual(bits(b.routing.get(1)!.indices));
    }
    expect(bits(model.forward(ids, {}).logits.data)).toEqual(bits(model.forward(ids).logits.data));
    expect(withRoutingOverride(config, {}, 'forward')).toBe(config);
    expect(withRoutingOverride(config, { topk: 2, topkGroup: 2 }, 'forward')).toBe(config);
    // the override changes the result (k' = 4 vs the config's 2)
    expect(bits(model.forward(ids, { topk: 4 }).logits.data)).not.toEqual(bits(model.forward(ids).logits.data));
  });

  it("decode with caches honours k' (cached last-position logits == full forward with k')", () => {
    const ids = randomIds(1, 6, config.vocabSize, 8)[0]!;
    const full = model.forward([ids], { topk: 3 });
    const caches = model.createCaches('absorb', 1, 8);
    model.forward([ids.slice(0, 4)], { topk: 3, attn: 'absorb', caches, startPos: 0, logits: 'last' });
    const step = model.forward([ids.slice(4, 5)], { topk: 3, attn: 'absorb', caches, startPos: 4, logits: 'last' });
    const V = config.vocabSize;
    const ref = full.logits.data.subarray(4 * V, 5 * V);
    for (let i = 0; i < V; i++) expect(Math.abs(step.logits.data[i]! - ref[i]!)).toBeLessThanOrEqual(1e-12);
  });

  it("k' that does not fit in the kept groups, or bad values, are InputErrors naming the limit", () => {
    const ids = [[1, 2, 3]];
    expect(() => model.forward(ids, { topk: 5 })).toThrow(InputError); // 2 groups × 2 experts = 4
    expect(() => model.forward(ids, { topk: 5 })).toThrow(/topk 5 does not fit in 2 kept group\(s\) of .* 2 experts \(at most 4\)/);
    expect(() => model.forward(ids, { topk: 7, topkGroup: 3 })).toThrow(/at most 6/);
    expect(() => model.forward(ids, { topk: 0 })).toThrow(/topk must be a positive integer/);
    expect(() => model.forward(ids, { topk: 1.5 })).toThrow(InputError);
    expect(() => model.forward(ids, { topkGroup: 5 })).toThrow(/topkGroup must be an integer in \[1, n_group = 4\]/);
    expect(() => model.lossAndGrads([[1, 2, 3]], { topk: 9, topkGroup: 4 })).toThrow(/lossAndGrads: topk 9/);
    expect(() => model.generate([1, 2], { topk: 5, maxNewTokens: 2 })).toThrow(/generate: topk 5/);
  });
});

describe("lossAndGrads(batch, {topk}) and generate(prompt, {topk})", () => {
  it("training honours k': loss, every gradient and the loads equal those of the k' config (bit for bit)", () => {
    const batch = randomIds(2, 7, config.vocabSize, 9);
    const opts = { balanceAlpha: 0.01 };
    const a = model.lossAndGrads(batch, { ...opts, topk: 3 });
    const b = withK(3).lossAndGrads(batch, opts);
    expect(a.loss).toEqual(b.loss);
    for (const [name, g] of b.grads) expect(bits(a.grads.get(name)!.data), name).toEqual(bits(g.data));
    expect(a.loads.map((l) => bits(l.load))).toEqual(b.loads.map((l) => bits(l.load)));
    // each MoE layer (main layer 1, MTP layer 2) routed 3 slots per token
    const T = 6;
    expect(a.loads.map((l) => l.load.reduce((s, v) => s + v, 0))).toEqual([2 * T * 3, 2 * (T - 1) * 3]);
  });

  it("generate (greedy, sampled, MTP speculative sampled) equals the k' config's generate", () => {
    const prompt = [3, 1, 4, 1, 5];
    // sampled speculation consumes the PRNG by q(draft) (the MTP head's distribution), so MTP drafts routed with
    // a k different from k' would change the sampled tokens
    for (const o of [{}, { temperature: 1, seed: 3 }, { speculative: 'mtp', temperature: 1, seed: 4 }] as const) {
      const a = model.generate(prompt, { topk: 4, maxNewTokens: 12, ...o });
      const b = withK(4).generate(prompt, { maxNewTokens: 12, ...o });
      expect(a.tokens, JSON.stringify(o)).toEqual(b.tokens);
      expect([a.drafted, a.accepted]).toEqual([b.drafted, b.accepted]);
    }
  });
});
