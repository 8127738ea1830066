import { describe, expect, it } from 'vitest';
import { mlaForward } from '../../src/model/attention.js';
import { createKVCache } from '../../src/model/kv_cache.js';
import { buildRopeTables } from '../../src/model/rope.js';
import { randomArray } from '../helpers/random.js';
import { mlaConfig, randomMLAWeights } from './helpers.js';

describe('MLA trace hooks', () => {
  for (const attn of ['naive', 'absorb'] as const) {
    it(`${attn}: documented names and shapes; scores masked to −∞ exactly where t > startPos + s; probs rows sum to 1`, () => {
      const config = mlaConfig({ hidden: 8, heads: 2, qLoraRank: 4, kvLoraRank: 5, nope: 3, rope: 4, v: 6 });
      const [B, S, start] = [2, 3, 2];
      const T = start + S;
      const w = randomMLAWeights(config, 3, 'float64');
      const rope = buildRopeTables(config, T, 'float64');
      const cache = createKVCache(config, attn, B, T, 'float64');
      mlaForward(config, w, randomArray(B * start * 8, 4, 'float64'), B, start, { startPos: 0, rope, attn, cache });
      const seen = new Map<string, { shape: readonly number[]; data: Float64Array }>();
      mlaForward(config, w, randomArray(B * S * 8, 5, 'float64'), B, S, {
        startPos: start,
        rope,
        attn,
        cache,
        prefix: 'model.layers.0.self_attn',
        trace: (name, shape, data) => seen.set(name, { shape, data: Float64Array.from(data) }),
      });
      const p = 'model.layers.0.self_attn';
      const want: Record<string, number[]> = {
        [`${p}.q_a_layernorm:out`]: [B, S, 4],
        [`${p}:q`]: [B, S, 2, 7],
        [`${p}:q_pe`]: [B, S, 2, 4],
        [`${p}.kv_a_layernorm:out`]: [B, S, 5],
        [`${p}:k_pe`]: [B, S, 4],
        [`${p}:attn_scores`]: [B, 2, S, T],
        [`${p}:attn_probs`]: [B, 2, S, T],
        [`${p}:o`]: [B, S, 12],
        [`${p}:out`]: [B, S, 8],
      };
      if (attn === 'naive') want[`${p}.kv_b_proj:out`] = [B, S, 2, 9];
      expect([...seen.keys()].sort()).toEqual(Object.keys(want).sort());
      for (const [name, shape] of Object.entries(want)) {
        expect(seen.get(name)!.shape, name).toEqual(shape);
        expect(seen.get(name)!.data.length, name).toBe(shape.reduce((a, b) => a * b, 1));
      }
      const scores = seen.get(`${p}:attn_scores`)!.data;
      const probs = seen.get(`${p}:attn_probs`)!.data;
      for (let r = 0; r < B * 2; r++) {
        for (let s = 0; s < S; s++) {
          let sum = 0;
          for (let t = 0; t < T; t++) {
            const i = (r * S + s) * T + t;
            expect(scores[i] === -Infinity, `row ${r} s ${s} t ${t}`).toBe(t > start + s);
            sum += probs[i]!;
          }
          expect(sum).toBeCloseTo(1, 14);
        }
      }
    });
  }
});
