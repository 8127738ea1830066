// Entry point of the WebAssembly kernels (f32). The JS side (src/kernels/wasm.ts) owns every
// byte above heapBase(): it copies inputs in, calls one of these, and copies outputs out.
// Nothing here allocates, so linear memory only grows when the JS side asks for it.

export { matmul, matmulColumns, setMatmulScratch, MATMUL_SCRATCH_BYTES, LAYOUT_NN, LAYOUT_NT, LAYOUT_TN, matmulMicroKernelProbe, MICRO_KERNEL_PROBE_FLOP, simdPeakProbe, PEAK_PROBE_FLOP } from './matmul';
export { softmaxForward, softmaxBackward, rmsnormForward, rmsnormBackward, crossEntropyForward, crossEntropyBackward } from './rowops';
export { swigluForward, swigluBackward, rope, adamw, add, scale, axpy } from './elementwise';
export { expKernel } from './vmath';
export { attentionForward, attentionBackward, attentionCombine, ATTENTION_MAX_WIDTH } from './attention';
export { roundBF16, actQuant, weightDequant, fp8Gemm } from './fp8';

/** First free byte after the static data (the matmul packing buffers); 16-byte aligned. */
export function heapBase(): usize {
  return (__heap_base + 15) & ~15;
}

/** Zeroes `bytes` bytes at `ptr` (memory.fill: memset speed; a JS fill of a view over shared memory is ~5× slower). */
export function zeroBytes(ptr: usize, bytes: usize): void {
  memory.fill(ptr, 0, bytes);
}

/** 1 when this build uses relaxed SIMD (`f32x4.relaxed_madd`), else 0. */
export function relaxedSimd(): i32 {
  return ASC_FEATURE_RELAXED_SIMD ? 1 : 0;
}
