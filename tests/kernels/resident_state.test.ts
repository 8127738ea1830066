/**
 * Long-lived state in the wasm memory (allocateResident): KV caches, AdamW moments, gradient buffers. Where the f32
 * backend's memory is shared (threads > 1) they are resident, and every result stays bit-identical to the one-thread
 * private-memory run (ordinary arrays, copied per call). Caches and trainers give their memory back with release().
 */
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { kernelsFor, useBackend, type WasmKernels } from '../../src/kernels/index.js';
import type { LatentKVCache, NaiveKVCache } from '../../src/model/kv_cache.js';
import { DeepSeekV3 } from '../../src/model/model.js';
import { getPreset } from '../../src/model/presets.js';
import { initWeights } from '../../src/model/weights.js';
import { AdamW } from '../../src/train/adamw.js';
import { Trainer } from '../../src/train/trainer.js';
import { Tensor } from '../../src/tensor.js';
import { TestRng } from './bounds.js';

function sameBits(a: Float32Array, b: Float32Array): boolean {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

const owns = (x: ArrayLike<number>): boolean => (kernelsFor('float32') as WasmKernels).ownsResident?.(x as Float32Array) ?? false;

describe('resident KV caches, optimizer state and gradients', () => {
  afterAll(async () => {
    await useBackend('js');
  });
  const config = getPreset('tiny');
  const rng = new TestRng(31);
  const prompt = Array.from({ length: 7 }, () => rng.int(0, config.vocabSize - 1));

  // prefill + 5 decode steps on both attention paths: the last logits of every step
  function decode(model: DeepSeekV3): Float32Array[] {
    const out: Float32Array[] = [];
    for (const attn of ['naive', 'absorb'] as const) {
      const caches = model.createCaches(attn, 1, prompt.length + 6);
      let r = model.forward([prompt], { attn, caches, startPos: 0, logits: 'last' });
      out.push(r.logits.data as Float32Array);
      for (let i = 0; i < 5; i++) {
        r = model.forward([[prompt[i]!]], { attn, caches, startPos: prompt.length + i, logits: 'last' });
        out.push(r.logits.data as Float32Array);
      }
      for (const c of caches) c.release();
    }
    return out;
  }

  it('f32 caches are resident on a shared memory, ordinary arrays on a private one; decoding is bit-identical either way', async () => {
    const weights = initWeights(config, { seed: 2, dtype: 'float32' });
    await useBackend('wasm', { variant: 'simd', threads: 1 });
    const model1 = new DeepSeekV3(config, weights);
    const [c1] = model1.createCaches('absorb', 1, 8);
    expect(owns((c1 as LatentKVCache).latent)).toBe(false);
    const ref = decode(model1);
    await useBackend('wasm', { variant: 'simd', threads: 2 });
    const model2 = new DeepSeekV3(config, weights);
    const caches = [...model2.createCaches('absorb', 1, 8), ...model2.createCaches('naive', 1, 8)];
    for (const c of caches) for (const a of c.attn === 'absorb' ? [c.latent, c.kPe] : [c.k, c.v]) expect(owns(a)).toBe(true);
    for (const c of caches) c.release();
    const got = decode(model2);
    expect(got.length).toBe(ref.length);
    got.forEach((g, i) => expect(sameBits(g, ref[i]!), `step ${i}`).toBe(true));
    const f64 = new DeepSeekV3(config, initWeights(config, { seed: 2, dtype: 'float64' })).createCaches('absorb', 1, 8)[0] as LatentKVCache;
    expect(f64.latent).toBeInstanceOf(Float64Array); // f64 runs on js: never resident
  });

  it('release() is idempotent, gives the memory back, and a released cache throws InputError when used', async () => {
    await useBackend('wasm', { variant: 'simd', threads: 2 });
    const model = new DeepSeekV3(config, initWeights(config, { seed: 2, dtype: 'float32' }));
    const caches = model.createCaches('naive', 1, 16);
    const cache = caches[0] as NaiveKVCache;
    const k = cache.k as Float32Array;
    expect(cache.bytes).toBeGreaterThan(0);
    cache.release();
    cache.release();
    expect(owns(k)).toBe(false);
    expect(cache.bytes).toBe(0);
    expect(() => cache.k).toThrow(InputError);
    expect(() => cache.k).toThrow(/'k' used after release\(\)/);
    expect(() => model.forward([[1]], { attn: 'naive', caches, startPos: 0 })).toThrow(InputError);
    for (const c of caches) c.release();
    // every block free again: the first cache of a new set gets the same address
    const again = model.createCaches('naive', 1, 16);
    expect(((again[0] as NaiveKVCache).k as Float32Array).byteOffset).toBe(k.byteOffset);
    for (const c of again) c.release();
  });

  it('generate() and speculative decoding release the caches they create', async () => {
    await useBackend('wasm', { variant: 'simd', threads: 2 });
    const model = new DeepSeekV3(config, initWeights(config, { seed: 4, dtype: 'float32' }));
    expect(config.numNextnPredictLayers).toBeGreaterThan(0);
    const created: { release(): void; isReleased: boolean }[] = [];
    const original = model.createCaches.bind(model);
    model.createCaches = (...args: Parameters<DeepSeekV3['createCaches']>) => {
      const cs = original(...args);
      created.push(...cs);
      return cs;
    };
    const plain = model.generate(prompt, { maxNewTokens: 4 });
    const spec = model.generate(prompt, { maxNewTokens: 4, speculative: 'mtp' });
    expect(spec.tokens).toEqual(plain.tokens);
    expect(created.length).toBe(2 * config.numHiddenLayers);
    expect(created.every((c) => c.isReleased)).toBe(true);
  });

  it('AdamW moments and the trainer gradient buffers are resident; two training steps give the same weights bit for bit as on one thread with ordinary arrays', async () => {
    const ids = Array.from({ length: 2 * 17 }, () => rng.int(0, config.vocabSize - 1));
    const data = { next: () => ({ ids: Int32Array.from(ids), B: 2, T: 16 }), state: () => ({}) } as never;
    const run = async (threads: number): Promise<Map<string, Tensor>> => {
      await useBackend('wasm', { variant: 'simd', threads });
      const weights = initWeights(config, { seed: 6, dtype: 'float32' });
      const trainer = new Trainer(new DeepSeekV3(config, weights), { data, lr: () => 1e-3, lossOptions: { mtp: true } });
      const m = (trainer.optimizer as unknown as { m: Map<string, Tensor> }).m;
      expect(owns(m.values().next().value!.data)).toBe(threads > 1);
      const grads = (trainer as unknown as { gradBuffers: Map<string, Tensor> }).gradBuffers;
      expect([...grads.values()].every((g) => owns(g.data))).toBe(threads > 1);
      trainer.trainStep();
      trainer.trainStep();
      trainer.release();
      trainer.release();
      expect(() => trainer.trainStep()).toThrow(/after release/);
      expect(owns(m.values().next().value!.data)).toBe(false);
      return weights;
    };
    const ref = await run(1);
    const got = await run(2);
    for (const [name, t] of got) expect(sameBits(t.data as Float32Array, ref.get(name)!.data as Float32Array), name).toBe(true);
  });

  it('lossAndGrads({ grads }) zeroes and fills the given buffers: the same gradients as fresh arrays, call after call', async () => {
    await useBackend('wasm', { variant: 'simd', threads: 2 });
    const model = new DeepSeekV3(config, initWeights(config, { seed: 8, dtype: 'float32' }));
    const batch = [prompt.concat(prompt)];
    const fresh = model.lossAndGrads(batch).grads;
    const buffers = new Map([...model.weights].map(([n, t]) => [n, new Tensor(t.shape, new Float32Array(t.size).fill(7))]));
    for (let i = 0; i < 2; i++) {
      const r = model.lossAndGrads(batch, { grads: buffers });
      expect(r.grads).toBe(buffers);
      for (const [name, g] of fresh) expect(sameBits(buffers.get(name)!.data as Float32Array, g.data as Float32Array), name).toBe(true);
    }
    buffers.delete('model.norm.weight');
    expect(() => model.lossAndGrads(batch, { grads: buffers })).toThrow(/opts.grads\['model.norm.weight'\] is missing/);
    const opt = new AdamW(model.weights);
    opt.release();
    expect(() => opt.step(fresh, 1e-3)).toThrow(/released/);
  });
});
