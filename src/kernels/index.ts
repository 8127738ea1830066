import { BackendError } from '../errors.js';
import type { DType } from '../tensor.js';
import { jsKernels } from './js.js';
import type { Kernels } from './kernels.js';

export type { AdamWParams, Kernels, MatmulLayout } from './kernels.js';
export { jsKernels } from './js.js';

/** Which kernel implementation runs for each precision. */
export interface BackendInfo {
  float32: string;
  float64: string;
}

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
 * Selects the backend for f32 work. `'wasm'` instantiates the WebAssembly SIMD kernels (the
 * relaxed-SIMD build when the engine validates it) and throws a `BackendError` if the engine
 * has no SIMD: it never falls back silently.
 */
export async function useBackend(name: BackendName): Promise<BackendInfo> {
  if (name === 'js') {
    float32Kernels = jsKernels;
  } else if (name === 'wasm') {
    const { loadWasmKernels } = await import('./wasm.js');
    float32Kernels = await loadWasmKernels();
  } else {
    throw new BackendError(`unknown backend '${String(name)}': expected 'js' or 'wasm'`);
  }
  return backendInfo();
}
