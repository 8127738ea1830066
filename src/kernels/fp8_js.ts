/**
 * The plain-TypeScript twin of the FP8 / bf16 emulation kernels: the readable definition of the
 * official Triton kernels (`inference/kernel.py` of deepseek-ai/DeepSeek-V3 @9b4e978, SPEC §6.5)
 * and the oracle the wasm twin (assembly/fp8.ts) is tested against, bit for bit.
 *
 * Arguments are already checked by src/kernels/fp8.ts; these functions only compute.
 */
import { E4M3_TABLE, e4m3FromNumber } from '../io/numeric.js';

/** Activation scale format: amax·fp32(1/448) (`none`) or that rounded up to a power of two (`ue8m0`, V3.1). */
export type ScaleFmt = 'none' | 'ue8m0';

/** Width of an activation tile (1×128) and of a weight block (128×128). */
export const FP8_BLOCK = 128;

/** `tl.maximum(amax, 1e-4)`: the clamp of an all-zero (or tiny) tile, as an f32 constant. */
export const ACT_QUANT_AMAX_MIN = Math.fround(1e-4);

/**
 * `amax / 448.` as Triton compiles it: a multiplication by the f32 reciprocal (measured on the
 * H200; rounding amax/448 once gives a different scale in about a quarter of the blocks).
 */
export const ACT_QUANT_RCP_448 = Math.fround(1 / 448);

/** One implementation of the FP8 kernels (the js twin here, the wasm twin in wasm_fp8.ts). Outputs are preallocated. */
export interface Fp8Kernels {
  /** `'js'`, `'wasm-simd'` or `'wasm-relaxed-simd'`. */
  readonly name: string;
  /** out[i] = bf16(f32(x[i])) as f32, RNE, NaN → the canonical NaN. out may alias x. */
  roundBF16(x: Float32Array | Float64Array, out: Float32Array): void;
  /** act_quant over `rows·cols/128` contiguous tiles of 128. */
  actQuant(x: Float32Array, rows: number, cols: number, scaleFmt: ScaleFmt, codes: Uint8Array, scales: Float32Array): void;
  /** weight_dequant: out = f32(code)·scale of its 128×128 block, optionally rounded to bf16. */
  weightDequant(codes: Uint8Array, scales: Float32Array, rows: number, cols: number, bf16: boolean, out: Float32Array): void;
  /** fp8_gemm: out[m,n] = Σ_kb f32(f32(f32(dot_kb)·aS)·bS) accumulated in f32, optionally rounded to bf16. */
  fp8Gemm(
    aCodes: Uint8Array,
    aScales: Float32Array,
    bCodes: Uint8Array,
    bScales: Float32Array,
    m: number,
    n: number,
    k: number,
    bf16: boolean,
    out: Float32Array,
  ): void;
}

/** The canonical NaN torch's bf16 conversion produces (0x7FC0, sign dropped), widened to f32 bits. */
export const BF16_NAN_BITS = 0x7fc00000;

/** bf16 RNE on f32 bits (SPEC §6.2): `(u + 0x7FFF + ((u >> 16) & 1)) >> 16`, kept in the upper half. */
export function bf16Bits(u: number): number {
  if ((u & 0x7fffffff) >>> 0 > 0x7f800000) return BF16_NAN_BITS;
  // u + 0x8000 ≤ 0xFF808000 for non-NaN u: no overflow in double arithmetic.
  return ((u + 0x7fff + ((u >>> 16) & 1)) & 0xffff0000) >>> 0;
}

function roundBF16(x: Float32Array | Float64Array, out: Float32Array): void {
  const n = x.length;
  if (out !== x) for (let i = 0; i < n; i++) out[i] = x[i]!; // f64 → f32 (RNE) first, as torch's c10::BFloat16(float)
  const u = new Uint32Array(out.buffer, out.byteOffset, n);
  for (let i = 0; i < n; i++) u[i] = bf16Bits(u[i]!);
}

/** 2^ceil(log2 s) for a positive finite f32 s, from its bits (exact, unlike a float log2). */
function ue8m0(s: number): number {
  const u = new Uint32Array(Float32Array.of(s).buffer)[0]!;
  const e = (u >>> 23) - 127; // s ≥ 1e-4/448 > 2^-126 is normal
  return 2 ** ((u & 0x7fffff) === 0 ? e : e + 1);
}

function actQuant(x: Float32Array, rows: number, cols: number, scaleFmt: ScaleFmt, codes: Uint8Array, scales: Float32Array): void {
  const tiles = (rows * cols) / FP8_BLOCK; // cols % 128 == 0: tiles never straddle rows
  for (let t = 0; t < tiles; t++) {
    const o = t * FP8_BLOCK;
    let amax = 0; // tl.max(tl.abs(x)) ignores NaN; this comparison does too
    for (let j = 0; j < FP8_BLOCK; j++) {
      const a = Math.abs(x[o + j]!);
      if (a > amax) amax = a;
    }
    if (amax < ACT_QUANT_AMAX_MIN) amax = ACT_QUANT_AMAX_MIN;
    let s = Math.fround(amax * ACT_QUANT_RCP_448);
    if (scaleFmt === 'ue8m0' && s < Infinity) s = ue8m0(s);
    scales[t] = s;
    // y = x / s in f32 (f64 quotient rounded once to f32 is the correctly rounded f32 quotient), then e4m3 RNE saturating
    for (let j = 0; j < FP8_BLOCK; j++) codes[o + j] = e4m3FromNumber(Math.fround(x[o + j]! / s), { saturate: true });
  }
}

function weightDequant(codes: Uint8Array, scales: Float32Array, rows: number, cols: number, bf16: boolean, out: Float32Array): void {
  const sc = Math.ceil(cols / FP8_BLOCK);
  for (let i = 0; i < rows; i++) {
    const srow = Math.floor(i / FP8_BLOCK) * sc;
    for (let j = 0; j < cols; j++) {
      out[i * cols + j] = E4M3_TABLE[codes[i * cols + j]!]! * scales[srow + Math.floor(j / FP8_BLOCK)]!; // f32(q·s), stored rounds
    }
  }
  if (bf16) roundBF16(out, out);
}

/** Codes → their exact values in f64. */
function decode(codes: Uint8Array): Float64Array {
  const v = new Float64Array(codes.length);
  for (let i = 0; i < codes.length; i++) v[i] = E4M3_TABLE[codes[i]!]!;
  return v;
}

function fp8Gemm(
  aCodes: Uint8Array,
  aScales: Float32Array,
  bCodes: Uint8Array,
  bScales: Float32Array,
  m: number,
  n: number,
  k: number,
  bf16: boolean,
  out: Float32Array,
): void {
  const A = decode(aCodes);
  const B = decode(bCodes);
  const nkb = k / FP8_BLOCK;
  const f = Math.fround;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      const bs = Math.floor(j / FP8_BLOCK) * nkb;
      let acc = 0;
      for (let kb = 0; kb < nkb; kb++) {
        // The block's dot product, exact: each product is a multiple of 2^-18 below 2^17.7, so every partial sum of
        // 128 of them is a multiple of 2^-18 below 2^24.7, an integer times 2^-18 of < 2^43 < 2^53: no rounding in f64.
        let dot = 0;
        const ao = i * k + kb * FP8_BLOCK;
        const bo = j * k + kb * FP8_BLOCK;
        for (let t = 0; t < FP8_BLOCK; t++) dot += A[ao + t]! * B[bo + t]!;
        // accumulator += tl.dot(a, b) * a_s[:, None] * b_s[None, :], each step in f32, left to right
        acc = f(acc + f(f(f(dot) * aScales[i * nkb + kb]!) * bScales[bs + kb]!));
      }
      out[i * n + j] = acc;
    }
  }
  if (bf16) roundBF16(out, out);
}

/** The js twin: the definition. */
export const jsFp8: Fp8Kernels = { name: 'js', roundBF16, actQuant, weightDequant, fp8Gemm };
