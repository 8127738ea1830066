import { describe, expect, it } from 'vitest';
import { BackendError, InputError, ShapeError } from '../../src/errors.js';
import { jsKernels } from '../../src/kernels/js.js';
import { loadWasmKernels } from '../../src/kernels/wasm.js';
import { TestRng } from './bounds.js';

describe('wasm linear memory', () => {
  it('stays the same size over 10k calls of every kernel', async () => {
    const K = await loadWasmKernels({ variant: 'simd' });
    const rng = new TestRng(31);
    const n = 96;
    const a = rng.f32(n * n);
    const b = rng.f32(n * n);
    const c = new Float32Array(n * n);
    const t = Int32Array.from({ length: n }, (_, i) => i % n);
    const pos = new Int32Array(n);
    const row = rng.f32(n);
    const out = new Float32Array(n * n);
    const rstd = new Float32Array(n);
    const hp = { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 1 };
    const round = (): void => {
      K.matmul('nt', a, b, c, n, n, n);
      K.matmulBatched('nn', a, b, c, 2, 8, 8, 8, true, 0);
      K.softmaxForward(a, out, n, n);
      K.softmaxBackward(out, b, c, n, n);
      K.rmsnormForward(a, row, out, rstd, n, n, 1e-6);
      K.rmsnormBackward(a, row, rstd, b, c, row.slice(), n, n);
      K.swigluForward(a, b, out, n * n);
      K.swigluBackward(a, b, a, out, c, n * n);
      K.rope(a, out, row, row, pos, 1, 2 * (n / 2), false);
      K.crossEntropyForward(a, t, rstd, n, n, -1);
      K.crossEntropyBackward(a, t, c, n, n, -1, 1);
      K.adamw(out, b, c.slice(), new Float32Array(n * n), n * n, hp);
      K.exp(a, out, n * n);
      K.add(a, b, out, n * n);
      K.scale(out, 0.5, n * n);
      K.axpy(0.5, a, out, n * n);
    };
    round();
    const after1 = K.memoryBytes();
    for (let i = 0; i < 10_000 / 16; i++) round(); // 16 kernels × 625 rounds = 10k calls
    for (let i = 0; i < 10_000; i++) K.matmul('nn', a, b, c, 16, 16, 16, i % 2 === 0);
    expect(K.memoryBytes()).toBe(after1);
  });

  it('grows for a large call, keeps that size, and stays correct for later calls', async () => {
    const K = await loadWasmKernels({ variant: 'simd' });
    const before = K.memoryBytes();
    const big = 1 << 20; // 4 MiB per array
    const x = new TestRng(32).f32(big);
    const y = new Float32Array(big);
    K.add(x, x, y, big);
    expect(K.memoryBytes()).toBeGreaterThan(before);
    expect(y[big - 1]).toBe(2 * x[big - 1]!);
    const grown = K.memoryBytes();
    const a = Float32Array.of(1, 2, 3, 4);
    const c = new Float32Array(4);
    K.matmul('nn', a, a, c, 2, 2, 2);
    const ref = new Float32Array(4);
    jsKernels.matmul('nn', a, a, ref, 2, 2, 2);
    expect(Array.from(c)).toEqual(Array.from(ref)); // small integers: exact in f32
    expect(K.memoryBytes()).toBe(grown);
  });

  it('rejects f64 arrays (f32-only build), arrays shorter than the call needs, unknown layouts', async () => {
    const K = await loadWasmKernels({ variant: 'simd' });
    expect(() => K.add(new Float64Array(4), new Float64Array(4), new Float64Array(4), 4)).toThrow(BackendError);
    expect(() => K.matmul('nn', new Float32Array(5), new Float32Array(6), new Float32Array(6), 2, 3, 3)).toThrow(ShapeError);
    expect(() => K.matmul('nn', new Float32Array(5), new Float32Array(6), new Float32Array(6), 2, 3, 3)).toThrow(/'a' has 5 elements, the call needs 6/);
    const one = new Float32Array(1);
    expect(() => K.matmul('tt' as never, one, one, one, 1, 1, 1)).toThrow(InputError);
    expect(() => K.matmul('constructor' as never, one, one, one, 1, 1, 1)).toThrow(InputError);
  });

  it('k = 0 gives C = 0 (or leaves C when accumulating); empty m or n is a no-op', async () => {
    const K = await loadWasmKernels({ variant: 'simd' });
    const c = Float32Array.of(1, 2, 3, 4);
    K.matmul('nn', new Float32Array(0), new Float32Array(0), c, 2, 2, 0, true);
    expect(Array.from(c)).toEqual([1, 2, 3, 4]);
    K.matmul('nn', new Float32Array(0), new Float32Array(0), c, 2, 2, 0);
    expect(Array.from(c)).toEqual([0, 0, 0, 0]);
    K.matmul('nt', new Float32Array(0), new Float32Array(3), c, 0, 1, 3);
  });
});
