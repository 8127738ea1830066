/**
 * Narrow floating-point formats of the checkpoints (SPEC §6.2–6.4): BF16, F16 and FP8 E4M3FN,
 * and the 128×128 block scaling of DeepSeek-V3's FP8 weights.
 *
 * Every encoder takes a JavaScript number, rounds it to binary32 first (as torch's casts do:
 * `c10::BFloat16`, `c10::Half` and `c10::Float8_e4m3fn` are constructed from `float`) and then
 * rounds to the narrow format with round-to-nearest, ties-to-even (RNE).
 */
import type { DType, FloatArray } from '../tensor.js';
import { allocate } from '../tensor.js';
import { ShapeError } from '../errors.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The binary32 bit pattern of `x` rounded to f32. */
export function f32Bits(x: number): number {
  f32[0] = x;
  return u32[0]!;
}

/** The f32 value of a binary32 bit pattern. */
export function f32FromBits(bits: number): number {
  u32[0] = bits >>> 0;
  return f32[0]!;
}

// ---------------------------------------------------------------------------------------------
// BF16: the upper 16 bits of a binary32 (SPEC §6.2).

/** f32 → BF16 bits, RNE: `(u + 0x7FFF + ((u >> 16) & 1)) >> 16`; NaN → 0x7FC0 (sign dropped, as torch). */
export function bf16FromNumber(x: number): number {
  if (Number.isNaN(x)) return 0x7fc0;
  const u = f32Bits(x);
  // u + 0x8000 ≤ 0xFF808000 for non-NaN inputs, so plain number arithmetic cannot overflow.
  return Math.floor((u + 0x7fff + ((u >>> 16) & 1)) / 65536) & 0xffff;
}

/** BF16 bits → value (exact: shift left by 16). */
export function bf16ToNumber(bits: number): number {
  return f32FromBits((bits & 0xffff) << 16);
}

// ---------------------------------------------------------------------------------------------
// F16: IEEE binary16, 1 sign, 5 exponent (bias 15), 10 mantissa.

/** f32 → F16 bits, RNE; overflow (≥ 65520) → ±inf; NaN → sign | 0x7E00 (torch's `fp16_ieee_from_fp32_value`). */
export function f16FromNumber(x: number): number {
  const u = f32Bits(x);
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  const man = u & 0x7fffff;
  if (exp === 0xff) return sign | (man !== 0 ? 0x7e00 : 0x7c00);
  const e = exp - 127 + 15; // biased f16 exponent
  if (e >= 31) return sign | 0x7c00;
  if (e >= 1) {
    // Normal: keep 10 of 23 mantissa bits; a carry out of the mantissa bumps the exponent (up to inf).
    const base = (e << 10) | (man >>> 13);
    const rem = man & 0x1fff;
    const up = rem > 0x1000 || (rem === 0x1000 && (base & 1) === 1) ? 1 : 0;
    return sign | (base + up);
  }
  if (exp === 0) return sign; // f32 subnormals are < 2^-126, far below half of f16's 2^-24
  // Subnormal result: |x| / 2^-24 = M · 2^(exp−126), M the 24-bit significand.
  const shift = 126 - exp;
  if (shift > 24) return sign; // |x| < 2^-25: rounds to zero (half-way 2^-25 itself needs shift 24)
  const M = man | 0x800000;
  const q = M >>> shift;
  const rem = M - q * 2 ** shift;
  const half = 2 ** (shift - 1);
  const up = rem > half || (rem === half && (q & 1) === 1) ? 1 : 0;
  return sign | (q + up);
}

/** F16 bits → value (exact). */
export function f16ToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const e = (bits >>> 10) & 0x1f;
  const m = bits & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m === 0 ? sign * Infinity : NaN;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

// ---------------------------------------------------------------------------------------------
// FP8 E4M3FN (SPEC §6.3): s eeee mmm, bias 7, no infinities, NaN = 0x7F / 0xFF, max 448.

/** Decoded value of FP8 E4M3FN code `c`, by the formulas of SPEC §6.3. */
function e4m3Value(c: number): number {
  const sign = c & 0x80 ? -1 : 1;
  const e = (c >>> 3) & 0xf;
  const m = c & 7;
  if (e === 15 && m === 7) return NaN;
  if (e === 0) return sign * 2 ** -6 * (m / 8);
  return sign * 2 ** (e - 7) * (1 + m / 8);
}

/** The 256-entry FP8 E4M3FN decode table (every value is exact in f32). */
export const E4M3_TABLE: Float32Array = Float32Array.from({ length: 256 }, (_, c) => e4m3Value(c));

/** Largest finite FP8 E4M3FN value. */
export const E4M3_MAX = 448;

/** FP8 E4M3FN code → value. */
export function e4m3ToNumber(code: number): number {
  return E4M3_TABLE[code & 0xff]!;
}

/** Options of the FP8 encoder. */
export interface E4M3Options {
  /**
   * true (default, what a quantizer wants): finite values and ±inf beyond ±448 become ±448.
   * false: torch's non-saturating cast bit for bit: |x| ≥ 480 and ±inf → NaN (0x7F | sign),
   * and (464, 480) rounds up into the NaN code.
   */
  saturate?: boolean;
}

/** Rounds a non-negative double to an integer, ties to even. */
function rintEven(v: number): number {
  const f = Math.floor(v);
  const r = v - f;
  return r > 0.5 || (r === 0.5 && f % 2 === 1) ? f + 1 : f;
}

/**
 * f32 → FP8 E4M3FN code, RNE on the 3 mantissa bits (SPEC §6.3); NaN → 0x7F with the input's sign.
 * Without saturation (448, 464] → 448 and (464, 480) rounds up into the NaN code, as torch does.
 */
export function e4m3FromNumber(x: number, opts: E4M3Options = {}): number {
  const u = f32Bits(x);
  const sign = (u >>> 24) & 0x80;
  if (Number.isNaN(x)) return sign | 0x7f;
  const a = Math.abs(Math.fround(x));
  if (opts.saturate ?? true) {
    if (a >= E4M3_MAX) return sign | 0x7e;
  } else if (a >= 480) {
    return sign | 0x7f; // torch: bits ≥ 0x43F00000 (incl. inf) → NaN
  }
  if (a < 2 ** -6) return sign | rintEven(a * 512); // subnormal grid 2^-9; a carry to 8 is the smallest normal 0x08
  const exp = ((u >>> 23) & 0xff) - 127; // a ≥ 2^-6 is a normal f32
  // a / 2^(exp−3) ∈ [8, 16); a carry to 16 moves to the next binade (and from 0x7E into NaN 0x7F).
  return sign | (((exp + 7) << 3) + rintEven(a / 2 ** (exp - 3)) - 8);
}

/** Encodes values to FP8 E4M3FN codes (see E4M3Options for `saturate`). */
export function encodeE4M3(values: ArrayLike<number>, opts: E4M3Options = {}): Uint8Array {
  const out = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = e4m3FromNumber(values[i]!, opts);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Block-wise FP8 weights (SPEC §6.4).

/** Shape of the `weight_scale_inv` of an `[rows, cols]` FP8 weight: `[ceil(rows/block), ceil(cols/block)]`. */
export function fp8ScaleShape(rows: number, cols: number, block = 128): [number, number] {
  return [Math.ceil(rows / block), Math.ceil(cols / block)];
}

/**
 * W[i, j] = e4m3(Q[i, j]) · Sinv[⌊i/block⌋, ⌊j/block⌋] (multiplied, despite the name "inv");
 * partial edge blocks use their block's scale. float64: the product is exact (4-bit × 24-bit
 * significands); float32: it is rounded to f32, as the official Triton kernel does.
 */
export function dequantizeBlockFp8(
  q: Uint8Array, // [rows, cols]
  scaleInv: Float32Array, // [ceil(rows/block), ceil(cols/block)]
  rows: number,
  cols: number,
  block = 128,
  dtype: DType = 'float32',
): FloatArray {
  const [sr, sc] = fp8ScaleShape(rows, cols, block);
  if (q.length !== rows * cols) throw new ShapeError(`dequantizeBlockFp8: q has ${q.length} elements, expected ${rows}×${cols}`);
  if (scaleInv.length !== sr * sc) {
    throw new ShapeError(`dequantizeBlockFp8: scale has ${scaleInv.length} elements, expected ${sr}×${sc} for a ${rows}×${cols} weight`);
  }
  const out = allocate(dtype, rows * cols);
  for (let i = 0; i < rows; i++) {
    const srow = Math.floor(i / block) * sc;
    for (let j = 0; j < cols; j++) {
      out[i * cols + j] = E4M3_TABLE[q[i * cols + j]!]! * scaleInv[srow + Math.floor(j / block)]!;
    }
  }
  return out;
}

/**
 * Block FP8 quantizer (library writer, SPEC §6.4): Sinv = f32(amax(block)/448), Q = e4m3(W/Sinv)
 * (saturating). An all-zero block gets Sinv = 1 (any positive scale encodes zeros as 0x00; amax/448
 * would divide by zero).
 */
export function quantizeBlockFp8(
  w: ArrayLike<number>, // [rows, cols]
  rows: number,
  cols: number,
  block = 128,
): { q: Uint8Array; scaleInv: Float32Array } {
  if (w.length !== rows * cols) throw new ShapeError(`quantizeBlockFp8: w has ${w.length} elements, expected ${rows}×${cols}`);
  const [sr, sc] = fp8ScaleShape(rows, cols, block);
  const scaleInv = new Float32Array(sr * sc);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const b = Math.floor(i / block) * sc + Math.floor(j / block);
      scaleInv[b] = Math.max(scaleInv[b]!, Math.abs(w[i * cols + j]!));
    }
  }
  for (let b = 0; b < scaleInv.length; b++) scaleInv[b] = scaleInv[b]! === 0 ? 1 : scaleInv[b]! / E4M3_MAX;
  const q = new Uint8Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const s = scaleInv[Math.floor(i / block) * sc + Math.floor(j / block)]!;
      q[i * cols + j] = e4m3FromNumber(w[i * cols + j]! / s);
    }
  }
  return { q, scaleInv };
}
