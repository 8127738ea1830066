/**
 * The cache-free inference path of MLA computes attention by blocks of 32 query rows, each over only the keys it
 * can see. It must give exactly the unblocked computation (the path taken when a trace is requested), on both
 * backends, for S below, at and across block boundaries and any startPos.
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { useBackend } from '../../src/kernels/index.js';
import { mlaForward } from '../../src/model/attention.js';
import { buildRopeTables } from '../../src/model/rope.js';
import type { DType, FloatArray } from '../../src/tensor.js';
import { randomArray } from '../helpers/random.js';
import { mlaConfig, randomMLAWeights, type MLAShape } from './helpers.js';

const shape: MLAShape = { hidden: 16, heads: 3, qLoraRank: 8, kvLoraRank: 6, nope: 4, rope: 4, v: 5, yarn: null };

function outputs(seed: number, dtype: DType, B: number, S: number, startPos: number): { blocked: FloatArray; plain: FloatArray } {
  const config = mlaConfig(shape);
  const w = randomMLAWeights(config, seed, dtype);
  const x = randomArray(B * S * config.hiddenSize, seed + 1, dtype);
  const rope = buildRopeTables(config, startPos + S, dtype);
  const blocked = mlaForward(config, w, x, B, S, { startPos, rope, attn: 'naive' }).out;
  // a trace callback selects the unblocked path (it traces the full [B, H, S, T] scores)
  const plain = mlaForward(config, w, x, B, S, { startPos, rope, attn: 'naive', trace: () => {} }).out;
  return { blocked, plain };
}

describe('MLA causal query blocks (cache-free inference)', () => {
  afterAll(async () => {
    await useBackend('js');
  });
  for (const backend of ['js', 'wasm'] as const) {
    for (const dtype of ['float64', 'float32'] as const) {
      if (backend === 'wasm' && dtype === 'float64') continue; // the wasm kernels are f32-only
      it(`give the unblocked output bit for bit (${backend}, ${dtype})`, async () => {
        await useBackend(backend);
        fc.assert(
          fc.property(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 100 }), fc.integer({ min: 0, max: 9 }), fc.nat(1000), (B, S, startPos, seed) => {
            const { blocked, plain } = outputs(seed, dtype, B, S, startPos);
            // the skipped keys have probability exactly 0 and add exact zeros to the sums
            expect(blocked).toEqual(plain);
          }),
          { seed: 2024, numRuns: 25 },
        );
      });
    }
  }
});
