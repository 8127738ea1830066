/**
 * Decoding with KV caches: incremental and chunked prefill (startPos > 0, S > 1) equal the full forward on
 * both attention paths; generate() equals greedy decoding by repeated full forwards; speculative decoding
 * with MTP gives exactly the plain greedy tokens (accept and reject paths), reports its acceptance rate.
 *
 * Tolerances: f64 throughout, 1e-11·max|ref| (the cached and full computations differ only in the
 * summation split of the same dot products: ~1e-15 relative observed; margin for longer reductions).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { greedyToken } from '../../src/model/generate.js';
import { DeepSeekV3 } from '../../src/model/model.js';
import { expectClose } from '../helpers/close.js';
import { microConfig, randomIds, randomWeights } from './helpers.js';

const TOL = { atolOfMax: 1e-11 };

function microModel(seed: number, overrides = {}): DeepSeekV3 {
  const c = microConfig(overrides);
  return new DeepSeekV3(c, randomWeights(c, 'float64', seed));
}

describe('cached decoding', () => {
  for (const attn of ['naive', 'absorb'] as const) {
    it(`chunked prefill in random pieces == full forward (${attn})`, () => {
      fc.assert(
        fc.property(fc.integer({ min: 0, max: 1e6 }), fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 5 }), (seed, pieces) => {
          const model = microModel(seed % 7, { qLoraRank: seed % 2 === 0 ? 12 : 0 });
          const T = pieces.reduce((a, b) => a + b, 0);
          const B = 2;
          const ids = randomIds(B, T, model.config.vocabSize, seed);
          const full = model.forward(ids, { attn });
          const V = model.config.vocabSize;
          const caches = model.createCaches(attn, B, T);
          const got = new Float64Array(B * T * V);
          let pos = 0;
          for (const S of pieces) {
            const r = model.forward(
              ids.map((row) => row.slice(pos, pos + S)),
              { attn, caches, startPos: pos },
            );
            for (let b = 0; b < B; b++) got.set(r.logits.data.subarray(b * S * V, (b + 1) * S * V), (b * T + pos) * V);
            pos += S;
          }
          expectClose(got, full.logits.data, `chunked logits ${pieces.join('+')}`, TOL);
          for (const c of caches) expect(c.length).toBe(T);
        }),
        { seed: 21, numRuns: 12 },
      );
    });
  }

  it('rejects an out-of-range id with its batch row and position', () => {
    const model = microModel(1);
    expect(() => model.forward([[1, 2], [3, 99]])).toThrow(/batch row 1, position 1/);
    expect(() => model.forward([[1, 2], [3]])).toThrow(InputError);
  });
});

describe('generate', () => {
  it('greedy generate == argmax of repeated full forwards (both paths), caches sized in bytes', () => {
    const model = microModel(3);
    const prompt = [5, 9, 2];
    const want: number[] = [];
    const seq = [...prompt];
    for (let i = 0; i < 6; i++) {
      const r = model.forward([seq], { logits: 'last' });
      const t = greedyToken(r.logits.data);
      want.push(t);
      seq.push(t);
    }
    for (const attn of ['naive', 'absorb'] as const) {
      const g = model.generate(prompt, { maxNewTokens: 6, attn });
      expect(g.tokens).toEqual(want);
      expect(g.forwardCalls).toBe(6);
      expect(g.cacheBytes).toBeGreaterThan(0);
    }
    const naive = model.generate(prompt, { maxNewTokens: 1, attn: 'naive' }).cacheBytes;
    const absorb = model.generate(prompt, { maxNewTokens: 1, attn: 'absorb' }).cacheBytes;
    expect(absorb).toBeLessThan(naive); // latent + k_pe (8+4) vs per-head K and V (2·(8+6)) per token
  });

  it('sampling is reproducible from the seed and stops at a stop token', () => {
    const model = microModel(4);
    const a = model.generate([1, 2, 3], { maxNewTokens: 8, temperature: 1.3, topP: 0.9, seed: 9 });
    const b = model.generate([1, 2, 3], { maxNewTokens: 8, temperature: 1.3, topP: 0.9, seed: 9 });
    expect(a.tokens).toEqual(b.tokens);
    expect(a.tokens.length).toBe(8);
    const stopAt = a.tokens[2]!;
    const s = model.generate([1, 2, 3], { maxNewTokens: 8, temperature: 1.3, topP: 0.9, seed: 9, stopTokens: [stopAt] });
    expect(s.tokens).toEqual(a.tokens.slice(0, a.tokens.indexOf(stopAt) + 1));
  });

  describe('speculative decoding with MTP', () => {
    const cases: [string, (m: DeepSeekV3) => void][] = [
      ['random weights', () => {}],
      // model.norm = 0 and shared_head.norm = 0: every logit is 0, greedy and the draft are both token 0 (every draft accepted)
      ['all drafts accepted', (m) => {
        m.weights.get('model.norm.weight')!.data.fill(0);
        m.weights.get(`model.layers.${m.config.numHiddenLayers}.shared_head.norm.weight`)!.data.fill(0);
      }],
      // only the main head is constant: drafts of other tokens are rejected
      ['drafts rejected', (m) => m.weights.get('model.norm.weight')!.data.fill(0)],
    ];
    for (const [label, edit] of cases) {
      for (const attn of ['naive', 'absorb'] as const) {
        it(`greedy output == plain greedy (${label}, ${attn})`, () => {
          for (const seed of [1, 2, 3]) {
            const model = microModel(seed, { numNextnPredictLayers: seed === 3 ? 2 : 1 });
            edit(model);
            const prompt = randomIds(1, 4, model.config.vocabSize, seed)[0]!;
            const plain = model.generate(prompt, { maxNewTokens: 12, attn });
            const spec = model.generate(prompt, { maxNewTokens: 12, attn, speculative: 'mtp' });
            expect(spec.tokens).toEqual(plain.tokens);
            expect(spec.drafted).toBeGreaterThan(0);
            expect(spec.acceptanceRate).toBe(spec.accepted / spec.drafted);
            if (label === 'all drafts accepted') {
              expect(spec.acceptanceRate).toBe(1);
              expect(spec.forwardCalls).toBeLessThan(plain.forwardCalls);
            }
            if (label === 'drafts rejected') expect(spec.accepted).toBeLessThan(spec.drafted);
          }
        });
      }
    }
    it('needs an MTP module', () => {
      const noMtp = microModel(1, { numNextnPredictLayers: 0 });
      expect(() => noMtp.generate([1], { speculative: 'mtp' })).toThrow(InputError);
    });
  });
});

describe('trace hook', () => {
  it('reports the embedding, every block output, the final norm and the logits under HF module names', () => {
    const model = microModel(2);
    const seen = new Map<string, { shape: readonly number[]; data: Float64Array }>();
    const ids = randomIds(2, 5, model.config.vocabSize, 1);
    const out = model.forward(ids, { trace: (name, shape, data) => seen.set(name, { shape, data: Float64Array.from(data) }) });
    const L = model.config.numHiddenLayers;
    for (const n of ['model.embed_tokens:out', 'model.norm:out', 'lm_head:out', 'model.layers.0.mlp:out', `model.layers.${L - 1}.mlp:out`]) {
      expect(seen.has(n), n).toBe(true);
    }
    for (let l = 0; l < L; l++) {
      expect(seen.get(`model.layers.${l}.input_layernorm:out`)!.shape).toEqual([2, 5, model.config.hiddenSize]);
      expect(Array.from(seen.get(`model.layers.${l}:out`)!.data)).toEqual(Array.from(out.hidden[l]!.data));
    }
    expect(Array.from(seen.get('lm_head:out')!.data)).toEqual(Array.from(out.logits.data));
  });
});
