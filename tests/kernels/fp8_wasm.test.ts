import { loadWasmKernels } from '../../src/kernels/wasm.js';
import { describeFp8Twins } from './fp8_twins.js';

describeFp8Twins(async () => (await loadWasmKernels({ variant: 'simd' })).fp8, 'wasm-simd');
