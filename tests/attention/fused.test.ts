/**
 * MLA's attention core runs on the fused kernels unless a trace asks for the scores and probabilities; the traced
 * path builds them explicitly (naive.ts / absorbed.ts: scores, τ and mask, softmax, P·V), which makes it the
 * definition. Both must give the same layer output, for both paths, with and without a cache, at any startPos,
 * across the fused kernels' 4-row and 64-key block boundaries.
 */
import fc from 'fast-check';
import { afterAll, describe, it } from 'vitest';
import { useBackend } from '../../src/kernels/index.js';
import { mlaForward, type AttnImpl } from '../../src/model/attention.js';
import { createKVCache } from '../../src/model/kv_cache.js';
import { buildRopeTables } from '../../src/model/rope.js';
import type { DType, FloatArray } from '../../src/tensor.js';
import { expectWithin } from '../kernels/bounds.js';
import { randomArray } from '../helpers/random.js';
import { mlaConfig, randomMLAWeights, type MLAShape } from './helpers.js';

const shape: MLAShape = { hidden: 16, heads: 3, qLoraRank: 8, kvLoraRank: 6, nope: 4, rope: 4, v: 5, yarn: null };

/** The layer output of S new tokens at startPos, fused and traced; with `cached`, after a prefill of startPos tokens into a cache. */
function outputs(seed: number, dtype: DType, attn: AttnImpl, B: number, S: number, startPos: number, cached: boolean): { fused: FloatArray; traced: FloatArray } {
  const config = mlaConfig(shape);
  const w = randomMLAWeights(config, seed, dtype);
  const d = config.hiddenSize;
  const rope = buildRopeTables(config, startPos + S, dtype);
  const prefix = randomArray(B * startPos * d, seed + 2, dtype);
  const x = randomArray(B * S * d, seed + 1, dtype);
  const run = (trace: boolean): FloatArray => {
    if (!cached) return mlaForward(config, w, x, B, S, { startPos, rope, attn, ...(trace ? { trace: () => {} } : {}) }).out;
    const cache = createKVCache(config, attn, B, startPos + S, dtype);
    if (startPos > 0) mlaForward(config, w, prefix, B, startPos, { startPos: 0, rope, attn, cache });
    return mlaForward(config, w, x, B, S, { startPos, rope, attn, cache, ...(trace ? { trace: () => {} } : {}) }).out;
  };
  return { fused: run(false), traced: run(true) };
}

function maxAbs(x: FloatArray): number {
  let m = 0;
  for (const v of x) m = Math.max(m, Math.abs(v));
  return m;
}

describe('MLA: the fused attention core equals the explicit (traced) one', () => {
  afterAll(async () => {
    await useBackend('js');
  });
  for (const backend of ['js', 'wasm'] as const) {
    for (const dtype of ['float64', 'float32'] as const) {
      if (backend === 'wasm' && dtype === 'float64') continue; // the wasm kernels are f32-only
      // f64: the two orders of the same sums differ by ~1e-15 of the output scale. f32: the layer's attention core
      // in f32 (scores of width n + R or C + R, softmax over ≤ 110 keys, P·V; forward-error bound of the kernels,
      // tests/kernels/attention.test.ts) then o_proj: measured ≤ 3e-7 of the output scale, so 10× that.
      const tol = dtype === 'float64' ? 1e-12 : 3e-6;
      it(`for both paths, with and without a cache (${backend}, ${dtype}; ${tol} of the output scale)`, async () => {
        await useBackend(backend);
        fc.assert(
          fc.property(
            fc.constantFrom<AttnImpl>('naive', 'absorb'),
            fc.boolean(),
            fc.integer({ min: 1, max: 2 }),
            fc.integer({ min: 1, max: 70 }),
            fc.integer({ min: 0, max: 40 }),
            fc.nat(1000),
            (attn, cached, B, S, startPos, seed) => {
              const { fused, traced } = outputs(seed, dtype, attn, B, S, startPos, cached);
              const scale = maxAbs(traced);
              expectWithin(fused, traced, () => tol * scale, `${attn} cached=${cached} B=${B} S=${S} startPos=${startPos}`);
            },
          ),
          { seed: 2024, numRuns: 30 },
        );
      });
    }
  }
});
