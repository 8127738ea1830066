/**
 * The arrays of one wasm kernel call, each placed in wasm memory once (an array several operands share, e.g. a KV
 * cache read as two views or an input of two products, is copied once; one that is read and written becomes inout),
 * by the extent its operands need. Arrays that live in the memory are taken by address (WasmArena).
 */
import { ShapeError } from '../errors.js';
import type { FloatArray } from '../tensor.js';
import type { WasmArena } from './wasm_arena.js';

export type Direction = 'in' | 'out' | 'inout';

/** The arrays of one call with the extent each needs and how the kernel uses it, each placed once. */
export class Placement {
  constructor(private readonly kernel: string) {}

  private readonly arrays = new Map<FloatArray, { n: number; dir: Direction }>();
  private readonly ptrs = new Map<FloatArray, number>();

  need(data: FloatArray, n: number, dir: Direction): void {
    const prev = this.arrays.get(data);
    if (prev === undefined) {
      this.arrays.set(data, { n, dir });
      return;
    }
    prev.n = Math.max(prev.n, n);
    if (prev.dir !== dir) prev.dir = 'inout';
  }

  place(arena: WasmArena): void {
    for (const [data, { n, dir }] of this.arrays) {
      if (!(data instanceof Float32Array)) throw new ShapeError(`${this.kernel}: a ${data.constructor.name} operand; the wasm kernels are f32-only`);
      const ptr = dir === 'in' ? arena.input(data, n) : dir === 'out' ? arena.output(data, n) : arena.inout(data, n);
      this.ptrs.set(data, ptr);
    }
  }

  ptr(data: FloatArray): number {
    return this.ptrs.get(data)!;
  }
}

