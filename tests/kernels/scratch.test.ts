/**
 * Scratch scopes (src/kernels/scratch.ts): f32 allocations of a call served from the wasm backend's memory.
 * - the allocator: zero-filled, 16-byte aligned, never overlapping within a scope, reused by the next scope, nested
 *   scopes share the outermost, the previous allocator is restored on throw, passthrough where memory is private;
 * - DeepSeekV3.lossAndGrads runs its plain step in a scope: what it returns must stay valid after the next step
 *   (nothing escapes the scope), and equal the step run outside any scope (tests/kernels/threads.test.ts compares
 *   the private-memory one-thread step, which has no scope, with the shared 2- and 3-thread ones bit for bit).
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kernelsFor, useBackend } from '../../src/kernels/index.js';
import { inScratchScope, scratchSupported } from '../../src/kernels/scratch.js';
import { loadWasmKernels, type WasmKernels } from '../../src/kernels/wasm.js';
import { jsKernels } from '../../src/kernels/js.js';
import { DeepSeekV3 } from '../../src/model/model.js';
import { getPreset } from '../../src/model/presets.js';
import { initWeights } from '../../src/model/weights.js';
import { allocate, withFloat32Allocator } from '../../src/tensor.js';

describe('scratch scopes: the allocator', () => {
  let K: WasmKernels;
  beforeAll(async () => {
    K = await loadWasmKernels({ variant: 'simd', threads: 1, resident: true });
  });
  afterAll(() => K.close());

  it('hands out zero-filled, 16-byte aligned, disjoint arrays in wasm memory, and reuses them in the next scope', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 1 << 17 }), { minLength: 1, maxLength: 12 }), (sizes) => {
        const first = inScratchScope(K, () =>
          sizes.map((n) => {
            const a = allocate('float32', n) as Float32Array;
            expect(a.length).toBe(n);
            expect(K.ownsResident(a) || a.buffer instanceof SharedArrayBuffer).toBe(true);
            expect(a.byteOffset % 16).toBe(0);
            expect(a.every((v) => v === 0)).toBe(true);
            a.fill(7); // dirty it: the next scope must still see zeros
            return [a.byteOffset, a.byteOffset + 4 * n] as const;
          }),
        );
        // disjoint within the scope (sorted by start, each ends before the next begins)
        const spans = [...first].sort((x, y) => x[0] - y[0]);
        for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1]);
        // the next scope reuses the same memory, zeroed again
        const again = inScratchScope(K, () => sizes.map((n) => allocate('float32', n) as Float32Array));
        expect(again.map((a) => a.byteOffset)).toEqual(first.map((s) => s[0]));
        for (const a of again) expect(a.every((v) => v === 0)).toBe(true);
      }),
      { seed: 515, numRuns: 30 },
    );
  });

  it('nests into the outermost scope, restores the allocator after a throw, and leaves f64 alone', () => {
    const outer = inScratchScope(K, () => {
      const a = allocate('float32', 10);
      const b = inScratchScope(K, () => allocate('float32', 10));
      // a nested scope does not reset the outer one: b comes after a
      expect(b.byteOffset).toBeGreaterThanOrEqual(a.byteOffset + 40);
      expect(allocate('float64', 3).buffer instanceof SharedArrayBuffer).toBe(false);
      // withFloat32Allocator(null) opts a cache out of the scope
      expect(withFloat32Allocator(null, () => allocate('float32', 4)).buffer instanceof SharedArrayBuffer).toBe(false);
      return a;
    });
    expect(outer.buffer instanceof SharedArrayBuffer).toBe(true);
    expect(() => inScratchScope(K, () => { throw new Error('boom'); })).toThrow('boom');
    expect(allocate('float32', 4).buffer instanceof SharedArrayBuffer).toBe(false);
  });

  it('has the shared memory by default in Node (no threads given), the private one for an explicit threads: 1', async () => {
    const D = await loadWasmKernels({ variant: 'simd' });
    const one = await loadWasmKernels({ variant: 'simd', threads: 1 });
    const forced = await loadWasmKernels({ variant: 'simd', resident: false });
    expect(D.residentSupported).toBe(true);
    expect(one.residentSupported).toBe(false);
    expect(forced.residentSupported).toBe(forced.threads > 1);
    for (const k of [D, one, forced]) k.close();
  });

  it('is a passthrough where the memory is private or the backend is js', async () => {
    const P = await loadWasmKernels({ variant: 'simd', threads: 1 });
    expect(scratchSupported(P)).toBe(false);
    expect(scratchSupported(jsKernels)).toBe(false);
    expect(inScratchScope(P, () => allocate('float32', 4)).buffer instanceof SharedArrayBuffer).toBe(false);
    P.close();
  });
});

describe('scratch scopes: lossAndGrads', () => {
  afterAll(async () => {
    await useBackend('js');
  });
  it('returns gradients and routing that later steps do not overwrite', async () => {
    await useBackend('wasm', { variant: 'simd', threads: 2 });
    const config = getPreset('tiny');
    const model = new DeepSeekV3(config, initWeights(config, { seed: 5, dtype: 'float32' }));
    const batch = (seed: number) => [Array.from({ length: 17 }, (_, i) => (i * 7 + seed) % config.vocabSize)];
    const r1 = model.lossAndGrads(batch(1), { mtp: false });
    const copy = new Map([...r1.grads].map(([n, t]) => [n, Float32Array.from(t.data)]));
    const routingCopy = [...r1.routing].map(([l, x]) => [l, Float32Array.from(x.weights), Float32Array.from(x.scores)] as const);
    for (const [, t] of r1.grads) expect(t.data.buffer instanceof SharedArrayBuffer).toBe(false);
    model.lossAndGrads(batch(2), { mtp: false });
    model.lossAndGrads(batch(3), { mtp: false });
    for (const [n, t] of r1.grads) expect(t.data, n).toEqual(copy.get(n));
    for (const [l, w, s] of routingCopy) {
      expect(r1.routing.get(l)!.weights).toEqual(w);
      expect(r1.routing.get(l)!.scores).toEqual(s);
    }
  });
});

describe('scratch scopes: forward', () => {
  afterAll(async () => {
    await useBackend('js');
  });
  it('gives the private-memory forward bit for bit (full logits and absorbed decode), and its results outlive later calls', async () => {
    const config = getPreset('tiny');
    const weights = initWeights(config, { seed: 9, dtype: 'float32' });
    const ids = [Array.from({ length: 20 }, (_, i) => (i * 5 + 1) % config.vocabSize)];
    const run = () => {
      const model = new DeepSeekV3(config, weights);
      const full = model.forward(ids, { attn: 'naive' });
      const caches = model.createCaches('absorb', 1, 24);
      const steps = [model.forward([ids[0]!.slice(0, 16)], { attn: 'absorb', caches, startPos: 0, logits: 'last' })];
      for (let p = 16; p < 19; p++) steps.push(model.forward([[ids[0]![p]!]], { attn: 'absorb', caches, startPos: p, logits: 'last' }));
      const logits = [full, ...steps].map((r) => Float32Array.from(r.logits.data));
      // every returned tensor still holds what it held when it was returned
      [full, ...steps].forEach((r, i) => expect(r.logits.data).toEqual(logits[i]));
      for (const c of caches) c.release();
      return { logits, scratch: scratchSupported(kernelsFor('float32')) };
    };
    await useBackend('wasm', { variant: 'simd', threads: 1 });
    const plain = run();
    await useBackend('wasm', { variant: 'simd', threads: 2 });
    const scoped = run();
    expect(plain.scratch).toBe(false);
    expect(scoped.scratch).toBe(true);
    scoped.logits.forEach((l, i) => expect(Array.from(new Uint32Array(l.buffer)), `call ${i}`).toEqual(Array.from(new Uint32Array(plain.logits[i]!.buffer))));
  });
});
