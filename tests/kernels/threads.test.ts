import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { BackendError } from '../../src/errors.js';
import { backendInfo, useBackend } from '../../src/kernels/index.js';
import type { MatmulLayout } from '../../src/kernels/kernels.js';
import { loadWasmKernels, type WasmKernels } from '../../src/kernels/wasm.js';
import { DeepSeekV3 } from '../../src/model/model.js';
import { getPreset } from '../../src/model/presets.js';
import { initWeights } from '../../src/model/weights.js';
import { TestRng } from './bounds.js';
import { describeKernelSuite } from './suite.js';

// The threaded build runs the whole kernel suite (bounds against the f64 oracle) with 3 threads.
describeKernelSuite(() => loadWasmKernels({ variant: 'simd', threads: 3 }), 'wasm-simd');

/** Bit patterns equal (NaN-safe, −0 ≠ +0). */
function sameBits(a: Float32Array, b: Float32Array): boolean {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

describe('wasm threads: results are bit-identical for 1, 2 and 3 threads', () => {
  const pools: WasmKernels[] = [];
  afterAll(async () => {
    for (const K of pools) K.close();
    await useBackend('js');
  });

  it('starts the requested number of threads in Node', async () => {
    for (const threads of [1, 2, 3]) pools.push(await loadWasmKernels({ variant: 'simd', threads }));
    expect(pools.map((K) => K.threads)).toEqual([1, 2, 3]);
  });

  it('rejects a thread count that is not a positive integer', async () => {
    await expect(loadWasmKernels({ threads: 0 })).rejects.toThrow(BackendError);
    await expect(loadWasmKernels({ threads: 1.5 })).rejects.toThrow(/threads must be an integer/);
  });

  it('matmul and matmulBatched, every layout, random shapes above and below the parallel threshold (fast-check)', () => {
    // shapes up to 2·4·140·700·160 ≈ 1.3e8 flop: most are split (≥ 2²¹ flop), some run on one thread; m < 4 hits the
    // unpacked decode paths, batch < threads splits columns, batch ≥ threads splits batch items
    fc.assert(
      fc.property(
        fc.constantFrom<MatmulLayout>('nn', 'nt', 'tn'),
        fc.integer({ min: 1, max: 140 }),
        fc.integer({ min: 1, max: 700 }),
        fc.integer({ min: 1, max: 160 }),
        fc.integer({ min: 1, max: 4 }),
        fc.boolean(),
        fc.boolean(),
        fc.integer(),
        (layout, m, n, k, batch, accumulate, shareB, seed) => {
          const rng = new TestRng(seed);
          const bStride = shareB ? 0 : k * n;
          const a = rng.f32(batch * m * k);
          const b = rng.f32(shareB ? k * n : batch * k * n);
          const c0 = rng.f32(batch * m * n, -2, 2);
          const outs = pools.map((K) => {
            const c = c0.slice();
            K.matmulBatched(layout, a, b, c, batch, m, n, k, accumulate, bStride);
            return c;
          });
          return sameBits(outs[1]!, outs[0]!) && sameBits(outs[2]!, outs[0]!);
        },
      ),
      { seed: 5511, numRuns: 60 },
    );
  });

  it('the row-split kernels (AdamW, SwiGLU, cross-entropy, softmax backward) on sizes that are split, odd tails included', () => {
    const rng = new TestRng(23);
    const n = 100_003; // not a multiple of 4 × threads: the split points stay on multiples of 4
    const [rows, vocab] = [67, 4099];
    const x = rng.f32(n, -8, 8);
    const y = rng.f32(n);
    const dy = rng.f32(n);
    const logits = rng.f32(rows * vocab, -5, 5);
    const targets = Int32Array.from({ length: rows }, (_, r) => (r % 9 === 0 ? -100 : (r * 131) % vocab));
    const hp = { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 3 };
    const outs = pools.map((K) => {
      const sw = new Float32Array(n);
      K.swigluForward(x, y, sw, n);
      const da = y.slice();
      const db = dy.slice();
      K.swigluBackward(x, y, dy, da, db, n);
      const [param, m, v] = [x.slice(), y.slice(), dy.map((t) => t * t)];
      K.adamw(param, dy, m, v, n, hp);
      const losses = new Float32Array(rows);
      const { sum } = K.crossEntropyForward(logits, targets, losses, rows, vocab, -100);
      const dl = logits.map((t) => t / 3);
      K.crossEntropyBackward(logits, targets, dl, rows, vocab, -100, 0.25);
      const probs = new Float32Array(rows * vocab);
      K.softmaxForward(logits, probs, rows, vocab);
      const dx = logits.slice();
      K.softmaxBackward(probs, logits, dx, rows, vocab);
      return { sw, da, db, param, m, v, losses, sum, dl, dx };
    });
    for (const o of outs.slice(1)) {
      for (const key of ['sw', 'da', 'db', 'param', 'm', 'v', 'losses', 'dl', 'dx'] as const) expect(sameBits(o[key], outs[0]![key]), key).toBe(true);
      expect(o.sum).toBe(outs[0]!.sum);
    }
  });

  it('a whole training step of the bench preset (loss and every gradient) is bit-identical', async () => {
    const config = getPreset('bench');
    const weights = initWeights(config, { seed: 3, dtype: 'float32' });
    const rng = new TestRng(17);
    const ids = [Array.from({ length: 65 }, () => rng.int(0, config.vocabSize - 1))];
    const results = [];
    for (const threads of [1, 2, 3]) {
      const info = await useBackend('wasm', { variant: 'simd', threads });
      expect(info.threads).toBe(threads);
      const { loss, grads } = new DeepSeekV3(config, weights).lossAndGrads(ids, { mtp: false });
      results.push({ loss, grads });
    }
    expect(backendInfo().threads).toBe(3);
    for (const r of results.slice(1)) {
      expect(r.loss.total).toBe(results[0]!.loss.total);
      expect([...r.grads.keys()]).toEqual([...results[0]!.grads.keys()]);
      for (const [name, g] of r.grads) expect(sameBits(g.data as Float32Array, results[0]!.grads.get(name)!.data as Float32Array), name).toBe(true);
    }
  });
});
