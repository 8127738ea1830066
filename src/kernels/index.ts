import { BackendError } from '../errors.js';
import type { DType } from '../tensor.js';
import { jsKernels } from './js.js';
import type { Kernels } from './kernels.js';
import type { WasmKernels, WasmVariant } from './wasm.js';

export type { AdamWParams, Kernels, MatmulLayout } from './kernels.js';
export type { WasmKernels, WasmKernelsName, WasmVariant } from './wasm.js';
export { jsKernels } from './js.js';
// FP8 / bf16 emulation kernels (official kernel.py); ScaleFmt is exported by the model's numerics module
export { actQuant, bf16Linear, bf16Round, fp8Gemm, roundBF16, weightDequant, jsFp8, FP8_BLOCK } from './fp8.js';
export type { Fp8Kernels, Fp8OutDType } from './fp8.js';

/** Which kernel implementation runs for each precision: `'js'`, `'wasm-simd'` or `'wasm-relaxed-simd'`. */
export interface BackendInfo {
  float32: string;
  float64: string;
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

/** Reports which implementation runs for f32 and for f64. */
export function backendInfo(): BackendInfo {
  return { float32: float32Kernels.name, float64: jsKernels.name };
}

/**
 * A fresh instance of the WebAssembly kernels (f32), without changing the global backend: the
 * entry point for callers that benchmark or verify the kernels directly, e.g.
 * `(await createWasmKernels()).matmul('nt', x, w, y, rows, out, in)`. Same options and errors
 * as {@link useBackend}; the result's `name` says which build runs.
 */
export async function createWasmKernels(options: { variant?: WasmVariant } = {}): Promise<WasmKernels> {
  const { loadWasmKernels } = await import('./wasm.js');
  return loadWasmKernels(options);
}

/**
 * Selects the backend for f32 work. `'wasm'` instantiates the WebAssembly SIMD kernels (by
 * default the relaxed-SIMD build when the engine validates it; `options.variant` forces one) and
 * throws a `BackendError` if the engine has no SIMD: it never falls back silently. The returned
 * {@link BackendInfo} names the implementation that now runs.
 */
export async function useBackend(name: BackendName, options: { variant?: WasmVariant } = {}): Promise<BackendInfo> {
  if (name === 'js') {
    float32Kernels = jsKernels;
  } else if (name === 'wasm') {
    // loaded on demand: the embedded binaries stay out of bundles that never use them
    const { loadWasmKernels } = await import('./wasm.js');
    float32Kernels = await loadWasmKernels(options);
  } else {
    throw new BackendError(`unknown backend '${String(name)}': expected 'js' or 'wasm'`);
  }
  return backendInfo();
}
