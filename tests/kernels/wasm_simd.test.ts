import { loadWasmKernels } from '../../src/kernels/wasm.js';
import { describeKernelSuite } from './suite.js';

describeKernelSuite(() => loadWasmKernels({ variant: 'simd' }), 'wasm-simd');
