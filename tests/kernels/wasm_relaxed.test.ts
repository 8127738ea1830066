import v8 from 'node:v8';
import { loadWasmKernels } from '../../src/kernels/wasm.js';
import { describeKernelSuite } from './suite.js';

// Node 20 keeps relaxed SIMD behind a V8 flag; turning it on at run time, before the first
// compile, is enough for WebAssembly.validate and codegen. This file runs in its own worker
// process (vitest pool 'forks'), so other test files keep the engine's defaults.
v8.setFlagsFromString('--experimental-wasm-relaxed-simd');

describeKernelSuite(() => loadWasmKernels({ variant: 'relaxed-simd' }), 'wasm-relaxed-simd');
