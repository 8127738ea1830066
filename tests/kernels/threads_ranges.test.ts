import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { BackendError } from '../../src/errors.js';
import { WASM_SHARED_INITIAL_PAGES, WASM_SIMD_SHARED_BASE64 } from '../../src/kernels/wasm_bytes.generated.js';
import { createMatmulPool, functionExports, type MatmulPool } from '../../src/kernels/wasm_threads_node.js';
import { TestRng } from './bounds.js';

// The generic range job (pool.ranges), driven through an export that already takes a trailing [lo, hi):
// matmulColumns(layout, a, b, c, m, n, k, accumulate, jBegin, jEnd) computes columns [jBegin, jEnd) of C.
// With accumulate = 1, a column left out keeps C₀ and a column run twice gets A·B added twice: either breaks the
// bit-equality with the one-thread product, so the test sees any gap or overlap in the split.

interface Instance {
  memory: WebAssembly.Memory;
  ex: Record<string, (...a: number[]) => number> & { heapBase(): number; MATMUL_SCRATCH_BYTES: WebAssembly.Global };
  pool: MatmulPool;
  base: number;
}

const align16 = (x: number): number => Math.ceil(x / 16) * 16;

async function start(threads: number): Promise<Instance> {
  const bytes = Uint8Array.from(atob(WASM_SIMD_SHARED_BASE64), (ch) => ch.charCodeAt(0));
  const module = await WebAssembly.compile(bytes);
  const memory = new WebAssembly.Memory({ initial: WASM_SHARED_INITIAL_PAGES, maximum: 65536, shared: true });
  const instance = await WebAssembly.instantiate(module, { env: { memory } });
  const ex = instance.exports as unknown as Instance['ex'];
  const scratchBytes = align16(ex.MATMUL_SCRATCH_BYTES.value as number);
  const scratch = Array.from({ length: threads - 1 }, (_, i) => align16(ex.heapBase()) + i * scratchBytes);
  const base = align16(ex.heapBase()) + (threads - 1) * scratchBytes;
  memory.grow(Math.ceil((base + 8 * 2 ** 20 - memory.buffer.byteLength) / 65536));
  const pool = await createMatmulPool(module, memory, ex as never, scratch, threads);
  return { memory, ex, pool, base };
}

describe('wasm threads: pool.ranges (a generic [lo, hi) split of any export)', () => {
  const runs: Instance[] = [];
  afterAll(() => runs.forEach((r) => r.pool.close()));

  it('matmulColumns through ranges equals the one-thread matmul bit for bit, for 2 and 3 threads (fast-check)', async () => {
    runs.push(await start(2), await start(3));
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 0, max: 300 }),
        fc.integer({ min: 1, max: 64 }),
        fc.constantFrom(1, 4, 16, 37),
        fc.integer(),
        (m, n, k, granule, seed) => {
          const rng = new TestRng(seed);
          const a = rng.f32(m * k);
          const b = rng.f32(k * n);
          const c0 = rng.f32(m * n, -2, 2);
          const outs = runs.map(({ memory, ex, pool, base }) => {
            const f32 = new Float32Array(memory.buffer);
            const pa = base;
            const pb = align16(pa + 4 * m * k);
            const pc = align16(pb + 4 * k * n);
            const pref = align16(pc + 4 * m * n);
            f32.set(a, pa / 4);
            f32.set(b, pb / 4);
            f32.set(c0, pc / 4);
            f32.set(c0, pref / 4);
            if (n > 0) ex.matmul!(0, pa, pb, pref, m, n, k, 1);
            pool.ranges({ fn: 'matmulColumns', args: [0, pa, pb, pc, m, n, k, 1], total: n, granule });
            return [f32.slice(pc / 4, pc / 4 + m * n), f32.slice(pref / 4, pref / 4 + m * n)];
          });
          return outs.every(([got, ref]) => new Uint32Array(got!.buffer).every((v, i) => v === new Uint32Array(ref!.buffer)[i]));
        },
      ),
      { seed: 7707, numRuns: 80 },
    );
  });

  it('names the function by its index in the export list, the same on both sides; rejects an unknown name', () => {
    const { pool } = runs[0]!;
    expect(() => pool.ranges({ fn: 'noSuchKernel', args: [], total: 10, granule: 1 })).toThrow(BackendError);
    expect(() => pool.ranges({ fn: 'matmulColumns', args: [], total: 10, granule: 0 })).toThrow(/granule/);
    const bytes = Uint8Array.from(atob(WASM_SIMD_SHARED_BASE64), (ch) => ch.charCodeAt(0));
    const names = functionExports(new WebAssembly.Module(bytes));
    expect(names).toContain('matmulColumns');
    expect(names).not.toContain('memory');
  });
});
