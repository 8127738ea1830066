/**
 * bf16 arithmetic as PyTorch does it on CUDA for bf16 tensors: load as f32, compute in f32 ("opmath"), round the
 * result once to bf16 (round to nearest, ties to even). Values are held in Float32Array buffers; every value a
 * profile stores is exactly representable in bf16.
 */
import { bf16Round } from '../../kernels/index.js';

/** Rounds a number to f32, then to bf16 (RNE; NaN stays NaN, overflow → ±inf, subnormals kept): the kernels' rounding. */
export const bf16: (x: number) => number = bf16Round;

/** bf16 tensor addition `a + b` (f32 add, one rounding): a fresh array. */
export function addBF16(a: Float32Array, b: Float32Array): Float32Array {
  const y = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) y[i] = bf16(Math.fround(a[i]! + b[i]!));
  return y;
}

/** SiLU of a bf16 tensor, `x / (1 + exp(−x))` in f32, rounded to bf16. */
export function siluBF16(x: number): number {
  return bf16(Math.fround(x / Math.fround(1 + Math.fround(Math.exp(-x)))));
}

/** Sigmoid of a bf16 value, `1 / (1 + exp(−x))` in f32, rounded to bf16. */
export function sigmoidBF16(x: number): number {
  return bf16(Math.fround(1 / Math.fround(1 + Math.fround(Math.exp(-x)))));
}

/**
 * `F.rms_norm(x, (cols,), w, eps)` on bf16 rows: mean of squares and r = rsqrt(mean + eps) in f32, then
 * y = (x·r)·w in f32 rounded once to bf16 (rounding x·r to bf16 first, as older code did, matches the GPU in
 * only ~75% of elements).
 */
export function rmsnormBF16(x: Float32Array, w: Float32Array, rows: number, cols: number, eps: number): Float32Array {
  const y = new Float32Array(rows * cols);
  const e = Math.fround(eps);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let ss = 0;
    for (let j = 0; j < cols; j++) ss += x[o + j]! * x[o + j]!;
    const rstd = Math.fround(1 / Math.sqrt(Math.fround(Math.fround(ss / cols) + e)));
    for (let j = 0; j < cols; j++) y[o + j] = bf16(Math.fround(Math.fround(x[o + j]! * rstd) * w[j]!));
  }
  return y;
}

/**
 * `softmax(dim=-1, dtype=float32)` over rows of bf16 (or f32) scores: max-subtracted exp in f32, divided by the
 * f32 sum. −∞ entries get 0. Returns f32 values (the caller rounds with `.type_as(x)` where the code does).
 */
export function softmaxF32(x: Float32Array, rows: number, cols: number): Float32Array {
  const y = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let max = -Infinity;
    for (let j = 0; j < cols; j++) if (x[o + j]! > max) max = x[o + j]!;
    let sum = 0;
    for (let j = 0; j < cols; j++) {
      const e = Math.fround(Math.exp(Math.fround(x[o + j]! - max)));
      y[o + j] = e;
      sum += e;
    }
    const s = Math.fround(sum);
    for (let j = 0; j < cols; j++) y[o + j] = Math.fround(y[o + j]! / s);
  }
  return y;
}
