/**
 * Scratch scopes: the f32 intermediates of one call (a training step's activations, their gradients, the saved
 * state) allocated in the wasm backend's memory instead of the JS heap, so every kernel call of the step takes its
 * operands by address (no copy in or out) and the step allocates no fresh arrays. A bump allocator over resident
 * chunks, reset when the outermost scope ends: the chunks are kept for the next scope (memory stays at the largest
 * step's need, like the per-call arena). Arrays from a scope are valid only until it ends, so a caller must not let
 * any escape: see `DeepSeekV3.lossAndGrads`, which keeps its results outside.
 */
import { withFloat32Allocator } from '../tensor.js';
import type { Kernels } from './kernels.js';
import type { WasmKernels } from './wasm.js';

/** f32 elements per chunk (16 MiB); a larger request gets a chunk of its own size. */
const CHUNK = 1 << 22;

class ScratchArena {
  private readonly chunks: Float32Array[] = [];
  private chunk = 0;
  private offset = 0;
  depth = 0;

  constructor(private readonly kernels: WasmKernels) {}

  reset(): void {
    this.chunk = 0;
    this.offset = 0;
  }

  /** n zero-filled f32, 16-byte aligned (offsets in multiples of 4 elements). */
  allocate(n: number): Float32Array {
    const size = Math.ceil(n / 4) * 4;
    while (this.chunk < this.chunks.length && this.offset + size > this.chunks[this.chunk]!.length) {
      this.chunk++;
      this.offset = 0;
    }
    if (this.chunk === this.chunks.length) this.chunks.push(this.kernels.allocResident(Math.max(CHUNK, size)));
    const out = this.chunks[this.chunk]!.subarray(this.offset, this.offset + n);
    this.offset += size;
    this.kernels.zero(out);
    return out;
  }

  /** Resident f32 elements held by the arena. */
  get size(): number {
    return this.chunks.reduce((a, c) => a + c.length, 0);
  }
}

const arenas = new WeakMap<Kernels, ScratchArena>();

/** Whether `kernels` can hold a scratch scope (a wasm instance with shared memory). */
export function scratchSupported(kernels: Kernels): boolean {
  const k = kernels as Partial<WasmKernels>;
  return k.residentSupported === true && typeof k.allocResident === 'function';
}

/**
 * Runs `fn` with its f32 allocations in `kernels`' memory (when it supports resident arrays; else `fn` runs as is).
 * Nested scopes share the outermost one. Arrays allocated inside are reused after the outermost scope ends.
 */
export function inScratchScope<R>(kernels: Kernels, fn: () => R): R {
  if (!scratchSupported(kernels)) return fn();
  let arena = arenas.get(kernels);
  if (arena === undefined) {
    arena = new ScratchArena(kernels as WasmKernels);
    arenas.set(kernels, arena);
  }
  if (arena.depth > 0) return fn();
  const a = arena;
  a.reset();
  a.depth++;
  try {
    return withFloat32Allocator((n) => a.allocate(n), fn);
  } finally {
    a.depth--;
  }
}

/** Resident f32 elements the scratch of `kernels` holds (0 when it has none). */
export function scratchSize(kernels: Kernels): number {
  return arenas.get(kernels)?.size ?? 0;
}
