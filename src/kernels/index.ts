import { BackendError } from '../errors.js';
import { allocate, Tensor, type DType, type FloatArray } from '../tensor.js';
import { jsKernels } from './js.js';
import type { Kernels } from './kernels.js';
import type { WasmKernels, WasmVariant } from './wasm.js';

export type { AdamWParams, AttentionGrads, AttentionInputs, AttentionShape, AttnOperand, Kernels, MatmulLayout } from './kernels.js';
export type { WasmKernels, WasmKernelsName, WasmVariant } from './wasm.js';
export { jsKernels } from './js.js';
// FP8 / bf16 emulation kernels (official kernel.py); ScaleFmt is exported by the model's numerics module
export { actQuant, bf16Linear, bf16Round, fp8Gemm, roundBF16, weightDequant, jsFp8, FP8_BLOCK } from './fp8.js';
export type { Fp8Kernels, Fp8OutDType } from './fp8.js';

/** Which kernel implementation runs for each precision: `'js'`, `'wasm-simd'` or `'wasm-relaxed-simd'`. */
export interface BackendInfo {
  float32: string;
  float64: string;
  /** Threads the f32 kernels run on (wasm: the `threads` option, default min(cores, 4) in Node, 1 in browsers; js and f64: 1). */
  threads: number;
}

/** Backends `useBackend` accepts: the plain-TypeScript kernels or the WebAssembly SIMD kernels. */
export type BackendName = 'js' | 'wasm';

// The one piece of global mutable state the library has: the explicit backend choice.
let float32Kernels: Kernels = jsKernels;

/**
 * The kernels to use for arrays of the given precision. Model code calls this at each op.
 * f64 always runs the plain-TypeScript kernels (the wasm build is f32-only); `backendInfo()`
 * says so, so no fallback is silent.
 */
export function kernelsFor(dtype: DType): Kernels {
  return dtype === 'float32' ? float32Kernels : jsKernels;
}

/**
 * Makes the f32 tensors of a weights map resident in the current wasm backend's memory: each entry is replaced by a
 * tensor (same shape) over a copy that lives there, so the kernels take it by address instead of copying it in at
 * every call (decode, where the weights are copied per token, gains most) and AdamW updates it in place there.
 * Call it after `useBackend('wasm')` and before building the model from the map. Returns the bytes made resident:
 * 0, changing nothing, when the f32 backend is js or its memory is not shared (`useBackend('wasm')` without
 * `threads` > 1 or `resident: true`; browsers without cross-origin isolation). These copies are never released; a later `useBackend` leaves the arrays valid (ordinary Float32Arrays
 * over the old memory) but copied again at each call.
 */
export function residentWeights(weights: Map<string, Tensor>): number {
  const k = float32Kernels as Partial<WasmKernels>;
  if (!k.residentSupported || k.resident === undefined) return 0;
  let bytes = 0;
  for (const [name, t] of weights) {
    if (!(t.data instanceof Float32Array)) continue;
    weights.set(name, new Tensor(t.shape, k.resident(t.data)));
    bytes += t.data.byteLength;
  }
  return bytes;
}

// which instance handed out each resident array, so that releasing it after a backend change reaches the owner
const residentOwner = new WeakMap<FloatArray, WasmKernels>();
const residentReleased = new WeakSet<FloatArray>();

/**
 * A zero-filled array of `n` values for long-lived buffers the kernels read and write often (KV caches, gradients,
 * optimizer state): for f32 it lives in the current wasm backend's memory when that memory is shared (see
 * {@link WasmOptions}), so the kernels take it by address instead of copying it in and out at every call; otherwise
 * (f64, the js backend, a private memory) it is `new Float32Array(n)` / `new Float64Array(n)`. Give it back with
 * {@link releaseResident} when done; until then the wasm memory stays reserved (until the backend is replaced).
 */
export function allocateResident(dtype: DType, n: number): FloatArray {
  const k = float32Kernels as Partial<WasmKernels>;
  if (dtype !== 'float32' || !k.residentSupported || k.allocResident === undefined) return allocate(dtype, n);
  const x = k.allocResident(n);
  residentOwner.set(x, k as WasmKernels);
  return x;
}

/**
 * Releases an array from {@link allocateResident}: its wasm memory is reused by later resident arrays, so `x` must
 * not be used afterwards. An ordinary array (the fallback) needs nothing and is left alone; releasing twice is a
 * BackendError.
 */
export function releaseResident(x: FloatArray): void {
  if (residentReleased.has(x)) throw new BackendError(`releaseResident: this array (${x.length} values) was released already`);
  const owner = residentOwner.get(x);
  if (owner === undefined) return;
  owner.releaseResident(x as Float32Array);
  residentOwner.delete(x);
  residentReleased.add(x);
}

/** Reports which implementation runs for f32 and for f64. */
export function backendInfo(): BackendInfo {
  const threads = (float32Kernels as Partial<WasmKernels>).threads ?? 1;
  return { float32: float32Kernels.name, float64: jsKernels.name, threads };
}

/**
 * A fresh instance of the WebAssembly kernels (f32), without changing the global backend: the
 * entry point for callers that benchmark or verify the kernels directly, e.g.
 * `(await createWasmKernels()).matmul('nt', x, w, y, rows, out, in)`. Same options and errors
 * as {@link useBackend}; the result's `name` says which build runs.
 */
export async function createWasmKernels(options: WasmOptions = {}): Promise<WasmKernels> {
  const { loadWasmKernels } = await import('./wasm.js');
  return loadWasmKernels(options);
}

/**
 * Options of the wasm backend. `variant` picks the build (see {@link WasmVariant}). `threads` runs the f32 matmul and
 * the row-wise kernels on that many threads (a worker pool over one shared WebAssembly.Memory) where the engine allows
 * it: in Node, default min(available cores, 4); in browsers the kernels run on one thread (docs/kernels.md says why)
 * and `backendInfo().threads` reports 1. Results are bit-identical for every thread count; `threads: 1` keeps the
 * private (non-shared) memory.
 */
export interface WasmOptions {
  variant?: WasmVariant;
  threads?: number;
  /**
   * Use the shared-memory build, so that resident arrays ({@link residentWeights}, `WasmKernels.resident`) and the
   * model's scratch scopes work: implied by `threads` > 1, and the default in Node when `threads` is not given (also
   * on one core); `threads: 1` alone keeps the private memory, `resident: false` forces it. BackendError where
   * SharedArrayBuffer is missing.
   */
  resident?: boolean;
}

/**
 * Selects the backend for f32 work. `'wasm'` instantiates the WebAssembly SIMD kernels (by
 * default the relaxed-SIMD build when the engine validates it; `options.variant` forces one) and
 * throws a `BackendError` if the engine has no SIMD: it never falls back silently. The returned
 * {@link BackendInfo} names the implementation that now runs and its thread count. The previous
 * wasm backend's worker threads, if any, are stopped.
 */
export async function useBackend(name: BackendName, options: WasmOptions = {}): Promise<BackendInfo> {
  let next: Kernels;
  if (name === 'js') {
    next = jsKernels;
  } else if (name === 'wasm') {
    // loaded on demand: the embedded binaries stay out of bundles that never use them
    const { loadWasmKernels } = await import('./wasm.js');
    next = await loadWasmKernels(options);
  } else {
    throw new BackendError(`unknown backend '${String(name)}': expected 'js' or 'wasm'`);
  }
  if (next !== float32Kernels) (float32Kernels as Partial<WasmKernels>).close?.();
  float32Kernels = next;
  return backendInfo();
}
