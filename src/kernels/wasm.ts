import { BackendError } from '../errors.js';
import type { Kernels } from './kernels.js';

/** Placeholder until the AssemblyScript build lands: the wasm backend is not available yet. */
export async function loadWasmKernels(): Promise<Kernels> {
  throw new BackendError('the wasm backend is not built yet');
}
