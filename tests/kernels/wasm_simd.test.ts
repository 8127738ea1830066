import { loadWasmKernels } from '../../src/kernels/wasm.js';
import { describeKernelSuite } from './suite.js';

// one thread on a private memory (the browser path); tests/kernels/threads.test.ts runs the suite on 3 threads
describeKernelSuite(() => loadWasmKernels({ variant: 'simd', threads: 1 }), 'wasm-simd');
