import v8 from 'node:v8';
import { loadWasmKernels } from '../../src/kernels/wasm.js';
import { describeFp8Twins } from './fp8_twins.js';

// Node 20 keeps relaxed SIMD behind a V8 flag (see wasm_relaxed.test.ts); this file runs in its own process.
v8.setFlagsFromString('--experimental-wasm-relaxed-simd');

describeFp8Twins(async () => (await loadWasmKernels({ variant: 'relaxed-simd' })).fp8, 'wasm-relaxed-simd');
