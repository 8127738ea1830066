/** The MLA code paths on the wasm SIMD f32 backend (batched matmuls with a strided B, in-place RoPE, softmax). */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { useBackend } from '../../src/kernels/index.js';
import { mlaBackward, mlaForward, zerosLikeMLAWeights, type MLAWeights } from '../../src/model/attention.js';
import { createKVCache } from '../../src/model/kv_cache.js';
import { buildRopeTables } from '../../src/model/rope.js';
import type { Tensor } from '../../src/tensor.js';
import { expectClose } from '../helpers/close.js';
import { randomArray } from '../helpers/random.js';
import { mlaConfig, randomMLAWeights } from './helpers.js';

beforeAll(async () => {
  await useBackend('wasm');
});
afterAll(async () => {
  await useBackend('js');
});

const config = mlaConfig({ hidden: 24, heads: 3, qLoraRank: 12, kvLoraRank: 10, nope: 6, rope: 8, v: 5, yarn: { factor: 4, originalMaxPositionEmbeddings: 8, betaFast: 32, betaSlow: 1, mscale: 1, mscaleAllDim: 1 } });
const [B, T, d] = [2, 13, 24];

describe('MLA on the wasm backend (f32)', () => {
  for (const attn of ['naive', 'absorb'] as const) {
    it(`${attn}: full forward and chunked prefill + decode with a cache match the f64 (js) forward`, () => {
      const w64 = randomMLAWeights(config, 11, 'float64');
      const w32 = randomMLAWeights(config, 11, 'float32');
      const x64 = randomArray(B * T * d, 12, 'float64');
      const x32 = Float32Array.from(x64);
      const ref = mlaForward(config, w64, x64, B, T, { startPos: 0, rope: buildRopeTables(config, T, 'float64'), attn: 'naive' }).out;
      const rope = buildRopeTables(config, T, 'float32');
      const full = mlaForward(config, w32, x32, B, T, { startPos: 0, rope, attn }).out;
      // f32 accumulation over reductions of ≤ 24 terms, a few chained products: 1e-5 of max is ~100 ulps of margin
      expectClose(full, ref, `${attn} wasm full`, { atolOfMax: 1e-5 });
      const cache = createKVCache(config, attn, B, T, 'float32');
      const got = new Float32Array(B * T * d);
      for (const [p, c] of [[0, 5], [5, 4], [9, 1], [10, 1], [11, 2]] as const) {
        const xc = new Float32Array(B * c * d);
        for (let b = 0; b < B; b++) xc.set(x32.subarray((b * T + p) * d, (b * T + p + c) * d), b * c * d);
        const { out } = mlaForward(config, w32, xc, B, c, { startPos: p, rope, attn, cache });
        for (let b = 0; b < B; b++) got.set(out.subarray(b * c * d, (b + 1) * c * d), (b * T + p) * d);
      }
      expectClose(got, ref, `${attn} wasm chunked`, { atolOfMax: 1e-5 });
    });
  }

  it('backward in f32 matches the f64 backward (1e-4 of max per tensor, the README bound for f32 gradients)', () => {
    const w64 = randomMLAWeights(config, 21, 'float64');
    const w32 = randomMLAWeights(config, 21, 'float32');
    const x64 = randomArray(B * T * d, 22, 'float64');
    const g64 = randomArray(B * T * d, 23, 'float64');
    const run = (w: MLAWeights, x: Float32Array | Float64Array, g: Float32Array | Float64Array, dtype: 'float32' | 'float64') => {
      const { saved } = mlaForward(config, w, x, B, T, { startPos: 3, rope: buildRopeTables(config, T + 3, dtype), attn: 'absorb', save: true });
      const grads = zerosLikeMLAWeights(w);
      return { dx: mlaBackward(config, w, grads, saved!, g), grads };
    };
    const a = run(w64, x64, g64, 'float64');
    const b = run(w32, Float32Array.from(x64), Float32Array.from(g64), 'float32');
    expectClose(b.dx, a.dx, 'dx', { atolOfMax: 1e-4 });
    for (const name of Object.keys(w64) as (keyof MLAWeights)[]) {
      expectClose((b.grads[name] as Tensor).data, (a.grads[name] as Tensor).data, `d${name}`, { atolOfMax: 1e-4 });
    }
  });
});
