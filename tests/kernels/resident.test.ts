import { afterAll, describe, expect, it } from 'vitest';
import { BackendError } from '../../src/errors.js';
import { residentWeights, useBackend } from '../../src/kernels/index.js';
import { loadWasmKernels } from '../../src/kernels/wasm.js';
import { DeepSeekV3 } from '../../src/model/model.js';
import { getPreset } from '../../src/model/presets.js';
import { initWeights } from '../../src/model/weights.js';
import { TestRng } from './bounds.js';

/** Bit patterns equal (NaN-safe, −0 ≠ +0). */
function sameBits(a: Float32Array, b: Float32Array): boolean {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

describe('resident arrays: operands that live in wasm memory go by address, with the same results', () => {
  afterAll(async () => {
    await useBackend('js');
  });

  it('a resident copy holds the same values; kernels on resident operands (and their subarrays) give the copied results bit for bit', async () => {
    expect((await loadWasmKernels({ variant: 'simd', threads: 1 })).residentSupported).toBe(false); // one thread: private memory unless resident: true
    const K = await loadWasmKernels({ variant: 'simd', resident: true });
    expect(K.residentSupported).toBe(true); // Node has SharedArrayBuffer
    const rng = new TestRng(3);
    const [m, n, k] = [37, 70, 300];
    const a = rng.f32(m * k);
    const b = rng.f32(2 * n * k);
    const c0 = rng.f32(m * n);
    const ra = K.resident(a);
    const rb = K.resident(b);
    const rc = K.resident(c0);
    expect(sameBits(ra, a) && sameBits(rb, b)).toBe(true);
    const c = c0.slice();
    K.matmul('nt', a, b.subarray(n * k), c, m, n, k, true);
    K.matmul('nt', ra, rb.subarray(n * k), rc, m, n, k, true); // output resident too: updated in place
    expect(sameBits(rc, c)).toBe(true);
    // mixed: resident input, ordinary output
    const c2 = c0.slice();
    K.matmul('nt', ra, b.subarray(n * k), c2, m, n, k, true);
    const c3 = c0.slice();
    K.matmul('nt', a, b.subarray(n * k), c3, m, n, k, true);
    expect(sameBits(c2, c3)).toBe(true);
    // an in-place kernel on a resident array
    const x = rng.f32(1001);
    const rx = K.resident(x);
    K.scale(rx, 0.37, rx.length);
    K.scale(x, 0.37, x.length);
    expect(sameBits(rx, x)).toBe(true);
  });

  it('resident arrays stay valid and in place when a later call grows the memory', async () => {
    const K = await loadWasmKernels({ variant: 'simd', resident: true });
    const x = K.resident(Float32Array.from({ length: 1000 }, (_, i) => i / 7));
    const before = K.memoryBytes();
    const big = new Float32Array(8 << 20); // 32 MiB in and out: the arena must grow
    K.scale(big, 2, big.length);
    expect(K.memoryBytes()).toBeGreaterThan(before);
    const y = new Float32Array(1000);
    K.add(x, x, y, 1000);
    for (let i = 0; i < 1000; i++) expect(y[i]).toBe(Math.fround(Math.fround(i / 7) * 2));
  });

  it('residentWeights: a model over resident weights gives the same logits and gradients; js backend: nothing moves', async () => {
    const config = getPreset('tiny');
    const rng = new TestRng(11);
    const ids = [Array.from({ length: 9 }, () => rng.int(0, config.vocabSize - 1))];
    await useBackend('js');
    const w0 = initWeights(config, { seed: 5, dtype: 'float32' });
    expect(residentWeights(new Map(w0))).toBe(0);
    await useBackend('wasm', { variant: 'simd', threads: 1 });
    expect(residentWeights(new Map(w0))).toBe(0); // private memory: nothing moves
    await useBackend('wasm', { variant: 'simd', resident: true });
    const plain = new DeepSeekV3(config, initWeights(config, { seed: 5, dtype: 'float32' })).lossAndGrads(ids);
    const w = initWeights(config, { seed: 5, dtype: 'float32' });
    const bytes = residentWeights(w);
    expect(bytes).toBeGreaterThan(0);
    const res = new DeepSeekV3(config, w).lossAndGrads(ids);
    expect(res.loss.total).toBe(plain.loss.total);
    for (const [name, g] of res.grads) expect(sameBits(g.data as Float32Array, plain.grads.get(name)!.data as Float32Array), name).toBe(true);
  });

  it('resident() takes f32 arrays only, and needs the shared-memory instance (BackendError)', async () => {
    const privateK = await loadWasmKernels({ variant: 'simd', threads: 1 });
    expect(() => privateK.resident(new Float32Array(2))).toThrow(BackendError);
    const K = await loadWasmKernels({ variant: 'simd', resident: true });
    expect(() => K.resident(new Float64Array(2) as unknown as Float32Array)).toThrow(BackendError);
  });
});
