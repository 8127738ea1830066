/**
 * The official GPU inference's quantisation kernels (deepseek-ai/DeepSeek-V3 `inference/kernel.py`,
 * Triton, SPEC §6.5) and bf16 rounding, emulated bit for bit where the kernel allows it: the
 * building blocks of the `official-*` numerics profiles. f32 in and out; every result holds
 * exactly representable rounded values (bf16 values, e4m3 codes, f32 scales).
 *
 * Each function checks its arguments here and runs on the f32 backend ({@link backendInfo}): the
 * plain-TypeScript twin (src/kernels/fp8_js.ts, the definition) or, after `useBackend('wasm')`,
 * the WebAssembly twin (assembly/fp8.ts). Both give the same bits. docs/kernels.md ("FP8 kernels")
 * has the rounding of each step and what is not reproducible.
 */
import { InputError } from '../errors.js';
import { kernelsFor } from './index.js';
import { bf16Bits, FP8_BLOCK, jsFp8, type Fp8Kernels, type ScaleFmt } from './fp8_js.js';
import type { WasmKernels } from './wasm.js';

export type { Fp8Kernels, ScaleFmt } from './fp8_js.js';
export { ACT_QUANT_AMAX_MIN, ACT_QUANT_RCP_448, FP8_BLOCK, jsFp8 } from './fp8_js.js';

/** Output dtype of weightDequant and fp8Gemm: rounded to bf16 (the official default dtype) or kept f32. */
export type Fp8OutDType = 'bfloat16' | 'float32';

/** The FP8 kernels of the current f32 backend: the wasm twin after `useBackend('wasm')`, else the js twin. */
function impl(): Fp8Kernels {
  return (kernelsFor('float32') as Partial<WasmKernels>).fp8 ?? jsFp8;
}

function dims(fn: string, d: Record<string, number>): void {
  for (const [name, v] of Object.entries(d)) {
    if (!Number.isSafeInteger(v) || v < 0) throw new InputError(`${fn}: ${name} = ${v} is not a non-negative integer`);
  }
}

function length(fn: string, name: string, a: ArrayLike<number>, expected: number, what: string): void {
  if (a.length !== expected) throw new InputError(`${fn}: '${name}' has ${a.length} elements; expected ${what} = ${expected}`);
}

function multipleOf128(fn: string, name: string, v: number): void {
  if (v % FP8_BLOCK !== 0) throw new InputError(`${fn}: ${name} = ${v} is not a multiple of ${FP8_BLOCK} (the official kernel's tile width)`);
}

function arrayType(fn: string, name: string, a: unknown, ctor: typeof Float32Array | typeof Uint8Array): void {
  if (!(a instanceof ctor)) {
    const got = typeof a === 'object' && a !== null ? a.constructor.name : typeof a;
    throw new InputError(`${fn}: '${name}' is a ${got}; expected a ${ctor.name}`);
  }
}

function outDType(fn: string, out: unknown): boolean {
  if (out === undefined || out === 'bfloat16') return true;
  if (out === 'float32') return false;
  throw new InputError(`${fn}: out = ${JSON.stringify(out)}; expected 'bfloat16' or 'float32'`);
}

/** One value rounded to bf16 (RNE, ties to even; via f32 first, as torch's casts), returned as a number. NaN → NaN. */
export function bf16Round(x: number): number {
  scalar[0] = x;
  scalarBits[0] = bf16Bits(scalarBits[0]!);
  return scalar[0]!;
}
const scalar = new Float32Array(1); // bf16Round's scratch: the f32 value and its bits
const scalarBits = new Uint32Array(scalar.buffer);

/**
 * Rounds every element to bf16 (RNE, ties to even, subnormals kept, overflow to ±inf, NaN → NaN),
 * returned as f32 values. A Float64Array is rounded to f32 first (torch's `c10::BFloat16(float)`
 * does the same). `out` (same length) may alias `x`; without it a new array is returned.
 */
export function roundBF16(x: Float32Array | Float64Array, out?: Float32Array): Float32Array {
  const fn = 'roundBF16';
  if (!(x instanceof Float32Array || x instanceof Float64Array)) {
    throw new InputError(`${fn}: 'x' is a ${(x as object)?.constructor?.name ?? typeof x}; expected a Float32Array or Float64Array`);
  }
  const y = out ?? new Float32Array(x.length);
  arrayType(fn, 'out', y, Float32Array);
  length(fn, 'out', y, x.length, "x's length");
  if (x.length > 0) impl().roundBF16(x, y);
  return y;
}

/**
 * The official `act_quant(x, 128, scale_fmt)`: per 1×128 tile of `x` [rows, cols] along the last axis,
 * amax = max(max|x|, 1e-4); s = amax·fp32(1/448) in f32 (Triton folds the division by 448 into a multiply by the
 * f32 reciprocal, measured on the H200); with `scaleFmt: 'ue8m0'`, s = 2^ceil(log2 s) (exact, from the bits);
 * codes = e4m3(x/s) with the division in f32, RNE, saturating to ±448. NaN elements are ignored by the amax and
 * encode as NaN codes.
 * @returns `codes` [rows, cols] (E4M3FN bit patterns) and `scales` [rows, cols/128] (f32).
 * @throws InputError when cols is not a multiple of 128 or x's length is not rows·cols.
 */
export function actQuant(
  x: Float32Array,
  rows: number,
  cols: number,
  opts: { scaleFmt?: ScaleFmt } = {},
): { codes: Uint8Array; scales: Float32Array } {
  const fn = 'actQuant';
  dims(fn, { rows, cols });
  multipleOf128(fn, 'cols', cols);
  arrayType(fn, 'x', x, Float32Array);
  length(fn, 'x', x, rows * cols, `rows·cols = ${rows}·${cols}`);
  const fmt = opts.scaleFmt ?? 'none';
  if (fmt !== 'none' && fmt !== 'ue8m0') throw new InputError(`${fn}: scaleFmt = ${JSON.stringify(fmt)}; expected 'none' or 'ue8m0'`);
  const codes = new Uint8Array(rows * cols);
  const scales = new Float32Array((rows * cols) / FP8_BLOCK);
  if (rows * cols > 0) impl().actQuant(x, rows, cols, fmt, codes, scales);
  return { codes, scales };
}

/**
 * The official `weight_dequant(codes, scales)`: W[i,j] = f32(code[i,j])·scales[⌊i/128⌋, ⌊j/128⌋] in f32, rounded once
 * to bf16 (`out: 'bfloat16'`, the default, as under `torch.set_default_dtype(torch.bfloat16)`) or kept f32.
 * Partial edge blocks use their block's scale.
 * @param codes E4M3FN codes [rows, cols].
 * @param scales f32 `weight_scale_inv` [ceil(rows/128), ceil(cols/128)].
 * @returns W [rows, cols].
 */
export function weightDequant(
  codes: Uint8Array,
  scales: Float32Array,
  rows: number,
  cols: number,
  opts: { out?: Fp8OutDType } = {},
): Float32Array {
  const fn = 'weightDequant';
  dims(fn, { rows, cols });
  arrayType(fn, 'codes', codes, Uint8Array);
  arrayType(fn, 'scales', scales, Float32Array);
  length(fn, 'codes', codes, rows * cols, `rows·cols = ${rows}·${cols}`);
  const sr = Math.ceil(rows / FP8_BLOCK);
  const sc = Math.ceil(cols / FP8_BLOCK);
  length(fn, 'scales', scales, sr * sc, `ceil(rows/128)·ceil(cols/128) = ${sr}·${sc}`);
  const bf16 = outDType(fn, opts.out);
  const y = new Float32Array(rows * cols);
  if (rows * cols > 0) impl().weightDequant(codes, scales, rows, cols, bf16, y);
  return y;
}

/**
 * The official `fp8_gemm(a, a_s, b, b_s)`: C = A·Bᵀ with
 * C[m,n] = Σ_kb ((Σ_{k∈kb} A[m,k]·B[n,k]) · aScales[m,kb]) · bScales[⌊n/128⌋,kb] over 128-wide k blocks kb.
 * Each block's dot product is exact (then rounded to f32), multiplied by the A scale and then the B scale in f32,
 * and accumulated in f32 in kb order (Triton's `accumulator += tl.dot(a, b) * a_s * b_s`); the output is rounded
 * to bf16 (default) or kept f32. The GPU's tensor cores accumulate the block with less precision, not
 * reproducibly: its f32 output is within ~2e-4 of max|C| of this one (SPEC §6.5).
 * @param aCodes E4M3FN activation codes [m, k] (from {@link actQuant}).
 * @param aScales f32 [m, k/128].
 * @param bCodes E4M3FN weight codes [n, k] (a Linear's weight, out × in).
 * @param bScales f32 `weight_scale_inv` [ceil(n/128), k/128].
 * @returns C [m, n].
 * @throws InputError when k is not a multiple of 128 or an array's length does not match its shape.
 */
export function fp8Gemm(
  aCodes: Uint8Array,
  aScales: Float32Array,
  bCodes: Uint8Array,
  bScales: Float32Array,
  m: number,
  n: number,
  k: number,
  opts: { out?: Fp8OutDType } = {},
): Float32Array {
  const fn = 'fp8Gemm';
  dims(fn, { m, n, k });
  multipleOf128(fn, 'k', k);
  arrayType(fn, 'aCodes', aCodes, Uint8Array);
  arrayType(fn, 'aScales', aScales, Float32Array);
  arrayType(fn, 'bCodes', bCodes, Uint8Array);
  arrayType(fn, 'bScales', bScales, Float32Array);
  const kb = k / FP8_BLOCK;
  length(fn, 'aCodes', aCodes, m * k, `m·k = ${m}·${k}`);
  length(fn, 'aScales', aScales, m * kb, `m·(k/128) = ${m}·${kb}`);
  length(fn, 'bCodes', bCodes, n * k, `n·k = ${n}·${k}`);
  const nb = Math.ceil(n / FP8_BLOCK);
  length(fn, 'bScales', bScales, nb * kb, `ceil(n/128)·(k/128) = ${nb}·${kb}`);
  const bf16 = outDType(fn, opts.out);
  const c = new Float32Array(m * n);
  if (m * n > 0) impl().fp8Gemm(aCodes, aScales, bCodes, bScales, m, n, k, bf16, c);
  return c;
}

/**
 * A bf16 `F.linear` as cuBLAS runs it under the official bf16 default dtype: y = x·Wᵀ accumulated in f32 on the
 * current f32 backend (`kernelsFor('float32').matmul('nt', …)`), rounded once to bf16. x [rows, inDim] and
 * W [outDim, inDim] should already hold bf16 values. cuBLAS's summation order is not reproduced, so a GPU result
 * may differ by a bf16 ulp here and there.
 * @returns y [rows, outDim].
 */
export function bf16Linear(x: Float32Array, W: Float32Array, rows: number, outDim: number, inDim: number): Float32Array {
  const fn = 'bf16Linear';
  dims(fn, { rows, outDim, inDim });
  arrayType(fn, 'x', x, Float32Array);
  arrayType(fn, 'W', W, Float32Array);
  length(fn, 'x', x, rows * inDim, `rows·inDim = ${rows}·${inDim}`);
  length(fn, 'W', W, outDim * inDim, `outDim·inDim = ${outDim}·${inDim}`);
  const y = new Float32Array(rows * outDim);
  if (rows * outDim === 0) return y;
  kernelsFor('float32').matmul('nt', x, W, y, rows, outDim, inDim);
  return roundBF16(y, y);
}
