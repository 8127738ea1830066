import { availableParallelism } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { BackendError } from '../../src/errors.js';
import { backendInfo, createWasmKernels, kernelsFor, useBackend } from '../../src/kernels/index.js';
import { wasmSupport } from '../../src/kernels/wasm.js';

describe('backend selection reports which implementation runs', () => {
  afterAll(async () => {
    await useBackend('js');
  });

  it('defaults to js for f32 and f64', () => {
    expect(backendInfo()).toEqual({ float32: 'js', float64: 'js', threads: 1 });
    expect(kernelsFor('float32').name).toBe('js');
  });

  // Node 20 validates relaxed SIMD only with --experimental-wasm-relaxed-simd; newer engines by default
  const relaxed = wasmSupport().relaxedSimd;
  const autoName = relaxed ? 'wasm-relaxed-simd' : 'wasm-simd';

  it(`useBackend('wasm') runs ${autoName} here (the engine's best); f64 stays js`, async () => {
    expect(wasmSupport().simd).toBe(true);
    const info = await useBackend('wasm');
    // default threads in Node: min(available cores, 4)
    expect(info).toEqual({ float32: autoName, float64: 'js', threads: Math.min(availableParallelism(), 4) });
    expect(backendInfo()).toEqual(info);
    expect(kernelsFor('float32').name).toBe(autoName);
    expect(kernelsFor('float64').name).toBe('js');
    expect((await useBackend('wasm', { variant: 'simd' })).float32).toBe('wasm-simd');
  });

  it.runIf(!relaxed)('asking for relaxed SIMD where the engine lacks it is an error, not a fallback', async () => {
    await expect(useBackend('wasm', { variant: 'relaxed-simd' })).rejects.toThrow(BackendError);
    await expect(useBackend('wasm', { variant: 'relaxed-simd' })).rejects.toThrow(/--experimental-wasm-relaxed-simd/);
    expect(backendInfo().float32).toBe('wasm-simd'); // unchanged by the failed switch
  });

  it('createWasmKernels returns an instance without touching the global choice', async () => {
    const before = backendInfo();
    const K = await createWasmKernels({ variant: 'simd' });
    expect(K.name).toBe('wasm-simd');
    const c = new Float32Array(1);
    K.matmul('nt', Float32Array.of(1, 2), Float32Array.of(3, 4), c, 1, 1, 2);
    expect(c[0]).toBe(11);
    expect(backendInfo()).toEqual(before);
  });

  it('unknown backend names are rejected', async () => {
    await expect(useBackend('gpu' as never)).rejects.toThrow(BackendError);
  });
});
