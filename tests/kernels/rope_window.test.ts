import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { ShapeError } from '../../src/errors.js';
import { loadWasmKernels, type WasmKernels } from '../../src/kernels/wasm.js';
import { TestRng } from './bounds.js';

// The wasm RoPE passes only the table rows [min pos, max pos] (positions rebased), so that a decode step at position
// 2000 does not copy 2000 rows. The kernel's arithmetic is scalar f32: y0 = x0·c − x1·s, y1 = x0·s + x1·c, each
// product and sum rounded once, so the expected values below are exact (bit for bit).
function ropeF32(x: Float32Array, cos: Float32Array, sin: Float32Array, pos: Int32Array, rows: number, dim: number, inverse: boolean): Float32Array {
  const f = Math.fround;
  const half = dim / 2;
  const y = new Float32Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < half; i++) {
      const c = cos[pos[r]! * half + i]!;
      const s = (inverse ? -1 : 1) * sin[pos[r]! * half + i]!;
      const [x0, x1] = [x[r * dim + 2 * i]!, x[r * dim + 2 * i + 1]!];
      y[r * dim + 2 * i] = f(f(x0 * c) - f(x1 * s));
      y[r * dim + 2 * i + 1] = f(f(x0 * s) + f(x1 * c));
    }
  }
  return y;
}

describe('wasm rope: only the table rows the positions use are passed, with the same values', () => {
  const instances: WasmKernels[] = [];
  afterAll(() => instances.forEach((K) => K.close()));

  it('bit-identical to the scalar f32 definition for positions anywhere in a long table, private and shared memory, tables resident or not (fast-check)', async () => {
    instances.push(await loadWasmKernels({ variant: 'simd', threads: 1 }), await loadWasmKernels({ variant: 'simd', threads: 2 }));
    const [privateK, sharedK] = instances as [WasmKernels, WasmKernels];
    const half = 4;
    const maxLen = 3000;
    const rng = new TestRng(1);
    const cos = rng.f32(maxLen * half); // any values: the test checks which row each position reads
    const sin = rng.f32(maxLen * half);
    const cosR = sharedK.resident(cos);
    const sinR = sharedK.resident(sin);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: maxLen - 1 }), fc.integer({ min: 0, max: 40 }), fc.boolean(), fc.integer(), (rows, p0, spread, inverse, seed) => {
        const r = new TestRng(seed);
        const dim = 2 * half;
        const pos = Int32Array.from({ length: rows }, () => Math.min(maxLen - 1, p0 + r.int(0, spread)));
        const x = r.f32(rows * dim);
        const want = new Uint32Array(ropeF32(x, cos, sin, pos, rows, dim, inverse).buffer);
        return [
          [privateK, cos, sin],
          [sharedK, cos, sin],
          [sharedK, cosR, sinR],
        ].every(([K, c, s]) => {
          const y = new Float32Array(rows * dim);
          (K as WasmKernels).rope(x, y, c as Float32Array, s as Float32Array, pos, rows, dim, inverse);
          return new Uint32Array(y.buffer).every((v, i) => v === want[i]);
        });
      }),
      { seed: 2026, numRuns: 150 },
    );
  });

  it('a table shorter than the largest position needs is a ShapeError naming the table', () => {
    const K = instances[0]!;
    const cos = new Float32Array(10 * 2);
    expect(() => K.rope(new Float32Array(4), new Float32Array(4), cos, cos, Int32Array.of(10), 1, 4, false)).toThrow(ShapeError);
    expect(() => K.rope(new Float32Array(4), new Float32Array(4), cos, new Float32Array(2), Int32Array.of(3), 1, 4, false)).toThrow(/'sin' has 2 elements/);
  });
});
