import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { BackendError } from '../../src/errors.js';
import { FreeList } from '../../src/kernels/free_list.js';
import { allocateResident, releaseResident, useBackend } from '../../src/kernels/index.js';
import { loadWasmKernels, type WasmKernels } from '../../src/kernels/wasm.js';

// Random alloc / release sequences: op ≥ 0 allocates op bytes (or f32), op < 0 releases live block number |op| mod live.
const ops = fc.array(fc.oneof(fc.integer({ min: 0, max: 5000 }), fc.integer({ min: -1000, max: -1 })), { minLength: 1, maxLength: 120 });

describe('FreeList: the resident allocator (addresses only)', () => {
  it('live blocks never overlap, are 16-aligned and big enough; free + live = end − start; end = top of the highest live block; a fitting request reuses freed space (fast-check)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1000 }), ops, (start16, seq) => {
        const start = 16 * start16;
        const h = new FreeList(start);
        const live: { ptr: number; size: number }[] = [];
        for (const op of seq) {
          if (op >= 0) {
            const size = Math.max(16, Math.ceil(op / 16) * 16);
            const endBefore = h.end;
            // a free gap of at least `size` below end exists iff the allocation must not grow end (first fit)
            const sorted = [...live].sort((a, b) => a.ptr - b.ptr);
            let gap = false;
            let at = start;
            for (const b of sorted) {
              if (b.ptr - at >= size) gap = true;
              at = b.ptr + b.size;
            }
            const ptr = h.alloc(op);
            if (ptr % 16 !== 0) return false;
            if (gap !== ptr + size <= endBefore) return false;
            live.push({ ptr, size });
          } else if (live.length > 0) {
            const [b] = live.splice(-op % live.length, 1);
            h.release(b!.ptr);
          }
          const sorted = [...live].sort((a, b) => a.ptr - b.ptr);
          for (let i = 1; i < sorted.length; i++) if (sorted[i - 1]!.ptr + sorted[i - 1]!.size > sorted[i]!.ptr) return false;
          if (sorted.length > 0 && sorted[0]!.ptr < start) return false;
          const liveBytes = live.reduce((a, b) => a + b.size, 0);
          if (h.freeBytes + liveBytes !== h.end - start) return false;
          const top = sorted.length > 0 ? sorted[sorted.length - 1]!.ptr + sorted[sorted.length - 1]!.size : start;
          if (h.end !== top || h.liveBlocks !== live.length) return false;
        }
        // releasing everything merges all free space and gives it back
        for (const b of live) h.release(b.ptr);
        return h.end === start && h.freeBytes === 0 && h.liveBlocks === 0;
      }),
      { seed: 4242, numRuns: 300 },
    );
  });

  it('rejects a release of an address that is not a live block (twice, or never allocated), and a misaligned start', () => {
    const h = new FreeList(64);
    const a = h.alloc(100);
    h.alloc(10);
    h.release(a);
    expect(() => h.release(a)).toThrow(BackendError);
    expect(() => h.release(a + 16)).toThrow(/no live block at address/);
    expect(() => new FreeList(8)).toThrow(/aligned/);
  });
});

describe('WasmKernels.allocResident / releaseResident (shared memory)', () => {
  let K: WasmKernels;
  afterAll(async () => {
    K.close();
    await useBackend('js');
  });

  it('random sequences on the real memory: zero-filled blocks that never alias (each keeps the pattern written into it) and reuse freed space; kernels take them by address (fast-check)', async () => {
    K = await loadWasmKernels({ variant: 'simd', threads: 1, resident: true });
    const lowest = (): number => {
      const z = K.allocResident(0);
      K.releaseResident(z);
      return z.byteOffset;
    };
    const origin = lowest();
    fc.assert(
      fc.property(ops, (seq) => {
        const live: { x: Float32Array; tag: number }[] = [];
        let tag = 1;
        for (const op of seq) {
          if (op >= 0) {
            const x = K.allocResident(op);
            if (x.length !== op || x.byteOffset % 16 !== 0 || x.some((v) => v !== 0)) return false;
            x.fill(tag);
            live.push({ x, tag: tag++ });
          } else if (live.length > 0) {
            const [b] = live.splice(-op % live.length, 1);
            K.releaseResident(b!.x);
          }
          if (!live.every(({ x, tag: t }) => x.every((v) => v === t))) return false;
        }
        // a kernel on a resident block updates it in place
        if (live.length > 0) {
          const { x, tag: t } = live[0]!;
          K.scale(x, 2, x.length);
          if (!x.every((v) => v === 2 * t)) return false;
        }
        for (const { x } of live) K.releaseResident(x);
        // everything released and merged: the lowest address is handed out again
        return lowest() === origin;
      }),
      { seed: 9090, numRuns: 60 },
    );
    // all released: one block of the size of the largest earlier one fits without growing the memory
    const before = K.memoryBytes();
    const x = K.allocResident(5000);
    expect(K.memoryBytes()).toBe(before);
    K.releaseResident(x);
  });

  it('release errors name the problem: twice, a subarray, an ordinary array; a private memory cannot allocate', async () => {
    const x = K.allocResident(100);
    expect(() => K.releaseResident(x.subarray(4))).toThrow(BackendError);
    expect(() => K.releaseResident(new Float32Array(100))).toThrow(/not a live resident block/);
    K.releaseResident(x);
    expect(() => K.releaseResident(x)).toThrow(/released twice/);
    const privateK = await loadWasmKernels({ variant: 'simd', threads: 1 });
    expect(privateK.residentSupported).toBe(false);
    expect(() => privateK.allocResident(4)).toThrow(/shared-memory build/);
  });

  it('allocateResident: resident for f32 on a shared backend, an ordinary array otherwise; releaseResident reaches the owner after a backend change', async () => {
    await useBackend('js');
    const plain = allocateResident('float32', 10);
    expect(K.ownsResident(plain as Float32Array)).toBe(false);
    releaseResident(plain); // an ordinary array: nothing to do
    const info = await useBackend('wasm', { variant: 'simd', threads: 2 });
    expect(info.threads).toBe(2);
    const f64 = allocateResident('float64', 10);
    expect(f64).toBeInstanceOf(Float64Array);
    const r = allocateResident('float32', 1000);
    expect(r.every((v) => v === 0)).toBe(true);
    await useBackend('wasm', { variant: 'simd', threads: 1 }); // the owner is no longer the backend
    releaseResident(r);
    expect(() => releaseResident(r)).toThrow(/released already/);
  });
});
