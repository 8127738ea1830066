/**
 * matmulGroup: independent products, each exactly as `matmul` computes it. On every backend the group equals the
 * products run one by one with `matmul`, bit for bit (the wasm threads run whole products, and matmul itself is
 * thread-count independent); a group whose products overlap is rejected.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShapeError } from '../../src/errors.js';
import { jsKernels } from '../../src/kernels/js.js';
import type { Kernels, MatmulItem, MatmulLayout } from '../../src/kernels/kernels.js';
import { loadWasmKernels, type WasmKernels } from '../../src/kernels/wasm.js';
import { TestRng } from './bounds.js';

const itemArb = fc.record({
  layout: fc.constantFrom<MatmulLayout>('nn', 'nt', 'tn'),
  m: fc.integer({ min: 1, max: 40 }),
  n: fc.integer({ min: 1, max: 40 }),
  k: fc.integer({ min: 1, max: 40 }),
  accumulate: fc.boolean(),
  // products may read the same input array
  shareA: fc.boolean(),
});

describe('matmulGroup', () => {
  const impls: Kernels[] = [jsKernels];
  beforeAll(async () => {
    for (const threads of [1, 2, 3]) impls.push(await loadWasmKernels({ variant: 'simd', threads }));
  });
  afterAll(() => impls.forEach((k) => (k as Partial<WasmKernels>).close?.()));

  it('equals the products run one by one with matmul, bit for bit (js, wasm on 1, 2 and 3 threads)', () => {
    fc.assert(
      fc.property(fc.array(itemArb, { minLength: 1, maxLength: 9 }), fc.nat(1 << 20), (specs, seed) => {
        for (const K of impls) {
          const rng = new TestRng(seed);
          const shared = rng.f32(40 * 40);
          // the outputs are subarrays of one buffer (as the experts' are), disjoint
          const total = specs.reduce((a, s) => a + s.m * s.n, 0);
          const out = rng.f32(total);
          const ref = out.slice();
          let off = 0;
          const items: MatmulItem<Float32Array>[] = [];
          const refItems: MatmulItem<Float32Array>[] = [];
          for (const s of specs) {
            const a = s.shareA ? shared : rng.f32(s.m * s.k);
            const b = rng.f32(s.k * s.n);
            items.push({ layout: s.layout, a, b, c: out.subarray(off, off + s.m * s.n), m: s.m, n: s.n, k: s.k, accumulate: s.accumulate });
            refItems.push({ ...items.at(-1)!, c: ref.subarray(off, off + s.m * s.n) });
            off += s.m * s.n;
          }
          K.matmulGroup(items);
          for (const it of refItems) K.matmul(it.layout, it.a, it.b, it.c, it.m, it.n, it.k, it.accumulate);
          expect(Array.from(new Uint32Array(out.buffer)), `${K.name}/${(K as Partial<WasmKernels>).threads ?? 1}`).toEqual(Array.from(new Uint32Array(ref.buffer)));
        }
      }),
      { seed: 4242, numRuns: 40 },
    );
  });

  it('rejects products that write what another one reads or writes', () => {
    const buf = new Float32Array(64);
    const x = new Float32Array(16);
    for (const K of impls) {
      // two outputs overlapping by 4 elements
      expect(() => K.matmulGroup([
        { layout: 'nn', a: x, b: x, c: buf.subarray(0, 16), m: 4, n: 4, k: 4 },
        { layout: 'nn', a: x, b: x, c: buf.subarray(12, 28), m: 4, n: 4, k: 4 },
      ])).toThrow(ShapeError);
      // one product's output is another one's input
      expect(() => K.matmulGroup([
        { layout: 'nn', a: x, b: x, c: buf.subarray(0, 16), m: 4, n: 4, k: 4 },
        { layout: 'nn', a: buf.subarray(8, 24), b: x, c: buf.subarray(32, 48), m: 4, n: 4, k: 4 },
      ])).toThrow(/product 0's output overlaps product 1's input/);
    }
  });
});
