/**
 * FP8 training emulation (tech report §3.3, SPEC §5.10): the quantizers and the three block-scaled GEMMs of a
 * Linear layer, each operand E4M3 with fine-grained scales and f32 promotion every 128 elements of K.
 *
 *   Fprop  y  [N, out] = x  [N, in] · Wᵀ     x: 1×128 tiles (per token, 128 input channels);  W: 128×128 blocks
 *   Dgrad  dx [N, in]  = dy [N, out] · W     dy: 1×128 tiles (per token, 128 output channels); Wᵀ: 128×128 blocks
 *   Wgrad  dW [out, in] = dyᵀ · x            dyᵀ and xᵀ: 128×1 tiles (per channel, 128 tokens)
 *
 * A 128×128 block of W is a 128×128 block of Wᵀ, so one weight quantization serves Fprop and Dgrad. A 128×1 tile
 * along tokens is a 1×128 tile of the transposed operand: Wgrad quantizes xᵀ and dyᵀ with the same tile
 * quantizer. Every GEMM is then C[m, n] = Σ_kb f32(f32(f32(dot_kb)·aS[m, kb])·bS[n, kb]) accumulated in f32 (the
 * official `fp8_gemm` formula, src/kernels/fp8.ts); in an f64 model the same quantized operands are multiplied
 * exactly (dequantised in f64, f64 GEMM), so the formulas can be checked to f64 precision.
 *
 * Widths that are not a multiple of 128 end in a partial tile/block: the operand is padded with zeros, which change
 * neither an amax nor a dot product. docs/components/fp8-training.md has the equations, the tile figure and the
 * knobs.
 */
import { InputError } from '../errors.js';
import { e4m3FromNumber, E4M3_TABLE } from '../io/numeric.js';
import { actQuant, ACT_QUANT_AMAX_MIN, ACT_QUANT_RCP_448, FP8_BLOCK, fp8Gemm, type ScaleFmt } from '../kernels/fp8.js';
import { kernelsFor } from '../kernels/index.js';
import { allocate, type DType, type FloatArray } from '../tensor.js';

/**
 * Smallest amax of the `'none'` clamp: 1e-4 (f32) · 2^-100 ≈ 7.9e-35, the smallest power-of-two fraction of
 * act_quant's clamp whose scale amax/448 is still a normal f32 (so the power-of-two rescaling below is exact).
 */
export const FP8_TRAIN_AMAX_MIN_NONE = ACT_QUANT_AMAX_MIN * 2 ** -100;

/** Options of the `'fp8-train'` numerics (every field optional; see docs/components/fp8-training.md). */
export interface Fp8TrainOptions {
  /** Scale of every operand (activations, gradients, weights): amax·f32(1/448) (`'none'`, default) or that rounded up to a power of two (`'ue8m0'`). */
  scaleFmt?: ScaleFmt;
  /** Skip every quantization (scales → identity): each Linear runs its exact GEMMs, so the run equals `'exact'` bit for bit. */
  disableQuant?: boolean;
  /**
   * The amax clamp (the report gives none): `'act_quant'` (default) = max(amax, 1e-4) as the official act_quant
   * and DeepGEMM's `per_token_cast_to_fp8`; `'none'` = no clamp in practice (max(amax, ≈7.9e-35): only an
   * all-zero tile reaches it). The clamp matters for gradients, whose tiles can have amax < 1e-4.
   */
  amaxClamp?: 'act_quant' | 'none';
  /**
   * MTP's `eh_proj`: `'fp8'` (default: it is a Linear, and the report's exclusions are the embedding, the output
   * head, MoE gating, norms and attention) or `'high'` (kept in the model's precision; the released checkpoint
   * stores eh_proj in bf16, not FP8).
   */
  ehProj?: 'fp8' | 'high';
}

/** {@link Fp8TrainOptions} with every default filled in. */
export interface Fp8TrainConfig {
  scaleFmt: ScaleFmt;
  disableQuant: boolean;
  amaxClamp: 'act_quant' | 'none';
  ehProj: 'fp8' | 'high';
}

const KEYS: readonly (keyof Fp8TrainOptions)[] = ['scaleFmt', 'disableQuant', 'amaxClamp', 'ehProj'];

function oneOf<T extends string>(where: string, key: string, v: unknown, allowed: readonly T[], def: T): T {
  if (v === undefined) return def;
  if (typeof v === 'string' && (allowed as readonly string[]).includes(v)) return v as T;
  throw new InputError(`${where}: fp8Train.${key} = ${JSON.stringify(v)}; expected ${allowed.map((a) => `'${a}'`).join(' or ')}`);
}

/** Checks options given at run time (JS callers, CLI) and fills the defaults; unknown keys are an InputError. */
export function resolveFp8TrainOptions(opts: Fp8TrainOptions | undefined, where = 'fp8Train'): Fp8TrainConfig {
  const o = (opts ?? {}) as Record<string, unknown>;
  if (typeof o !== 'object' || o === null) throw new InputError(`${where}: fp8Train must be an object`);
  for (const k of Object.keys(o)) {
    if (!(KEYS as readonly string[]).includes(k)) throw new InputError(`${where}: unknown fp8Train option '${k}' (known: ${KEYS.join(', ')})`);
  }
  if (o.disableQuant !== undefined && typeof o.disableQuant !== 'boolean') {
    throw new InputError(`${where}: fp8Train.disableQuant = ${JSON.stringify(o.disableQuant)}; expected a boolean`);
  }
  return {
    scaleFmt: oneOf(where, 'scaleFmt', o.scaleFmt, ['none', 'ue8m0'] as const, 'none'),
    disableQuant: o.disableQuant === true,
    amaxClamp: oneOf(where, 'amaxClamp', o.amaxClamp, ['act_quant', 'none'] as const, 'act_quant'),
    ehProj: oneOf(where, 'ehProj', o.ehProj, ['fp8', 'high'] as const, 'fp8'),
  };
}

/** An operand quantized in tiles of 128 along its last axis: codes [rows, kPad] (E4M3FN), scales [rows, kPad/128] (f32). */
export interface Fp8Tiles {
  codes: Uint8Array;
  scales: Float32Array;
  rows: number;
  /** Width padded to a multiple of 128 (the padding holds zero codes). */
  kPad: number;
}

/** A weight quantized in 128×128 blocks: codes [rows, cols], scales [ceil(rows/128), ceil(cols/128)]. */
export interface Fp8Blocks {
  codes: Uint8Array;
  scales: Float32Array;
  rows: number;
  cols: number;
}

/** ceil(n/128)·128. */
export function pad128(n: number): number {
  return Math.ceil(n / FP8_BLOCK) * FP8_BLOCK;
}

/** x [rows, cols] → an f32 copy [rows, pad128(cols)] with zero columns appended (f64 values are rounded to f32). */
export function padColumnsF32(x: FloatArray, rows: number, cols: number): Float32Array {
  const kPad = pad128(cols);
  const out = new Float32Array(rows * kPad);
  if (kPad === cols) {
    out.set(x);
    return out;
  }
  for (let r = 0; r < rows; r++) out.set(x.subarray(r * cols, (r + 1) * cols), r * kPad);
  return out;
}

/** x [rows, cols] → xᵀ as f32 [cols, pad128(rows)], zero columns appended: the 128×1 tiles of x become 1×128 tiles. */
export function transposePadF32(x: FloatArray, rows: number, cols: number): Float32Array {
  const rPad = pad128(rows);
  const out = new Float32Array(cols * rPad);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rPad + r] = x[r * cols + c]!;
  return out;
}

/** 2^⌈log2 s⌉ of a positive normal f32 s, from its bits (exact). */
function ue8m0(s: number): number {
  const u = new Uint32Array(Float32Array.of(s).buffer)[0]!;
  const e = (u >>> 23) - 127;
  return 2 ** ((u & 0x7fffff) === 0 ? e : e + 1);
}

/** The scale of a tile or block with maximum |value| `amax`: f32(max(amax, clamp)·f32(1/448)), ue8m0 optional. */
export function fp8TrainScale(amax: number, cfg: Fp8TrainConfig): number {
  const a = Math.max(amax, cfg.amaxClamp === 'none' ? FP8_TRAIN_AMAX_MIN_NONE : ACT_QUANT_AMAX_MIN);
  const s = Math.fround(a * ACT_QUANT_RCP_448);
  return cfg.scaleFmt === 'ue8m0' ? ue8m0(s) : s;
}

/**
 * 1×128 tiles of x32 [rows, kPad] (kPad a multiple of 128) by the official act_quant kernel (the same
 * implementation the inference profiles use): s = f32(max(amax, 1e-4)·f32(1/448)), codes e4m3(f32(x/s)).
 * With the `'none'` clamp, a tile of amax below 1e-4 is first multiplied by 2^k (the least k that lifts it to
 * ≥ 1e-4, at most 100) and its scale divided by 2^k afterwards: both exact, so the codes and scale are those of
 * s = f32(max(amax, 1e-4·2^-100)·f32(1/448)).
 */
export function quantizeTiles(x32: Float32Array, rows: number, kPad: number, cfg: Fp8TrainConfig): Fp8Tiles {
  if (cfg.amaxClamp === 'act_quant' || rows * kPad === 0) {
    const { codes, scales } = actQuant(x32, rows, kPad, { scaleFmt: cfg.scaleFmt });
    return { codes, scales, rows, kPad };
  }
  const tiles = (rows * kPad) / FP8_BLOCK;
  const shift = new Int32Array(tiles);
  let lifted: Float32Array | null = null;
  for (let t = 0; t < tiles; t++) {
    const o = t * FP8_BLOCK;
    let amax = 0;
    for (let j = 0; j < FP8_BLOCK; j++) amax = Math.max(amax, Math.abs(x32[o + j]!));
    if (amax >= ACT_QUANT_AMAX_MIN) continue;
    let k = 0;
    while (k < 100 && amax * 2 ** k < ACT_QUANT_AMAX_MIN) k++;
    shift[t] = k;
    lifted ??= x32.slice();
    const p = 2 ** k;
    for (let j = 0; j < FP8_BLOCK; j++) lifted[o + j] = x32[o + j]! * p;
  }
  const { codes, scales } = actQuant(lifted ?? x32, rows, kPad, { scaleFmt: cfg.scaleFmt });
  for (let t = 0; t < tiles; t++) if (shift[t] !== 0) scales[t] = scales[t]! * 2 ** -shift[t]!;
  return { codes, scales, rows, kPad };
}

/**
 * The 128×128 block quantizer of a weight W [rows, cols] (its f32 values): per block s = f32(max(amax, clamp)·f32(1/448))
 * (ue8m0 optional), codes e4m3(f32(w/s)) RNE, saturating; partial edge blocks take their block's scale.
 */
export function quantizeWeightBlocks(W: FloatArray, rows: number, cols: number, cfg: Fp8TrainConfig): Fp8Blocks {
  const br = Math.ceil(rows / FP8_BLOCK);
  const bc = Math.ceil(cols / FP8_BLOCK);
  const amax = new Float64Array(br * bc);
  for (let i = 0; i < rows; i++) {
    const bo = Math.floor(i / FP8_BLOCK) * bc;
    for (let j = 0; j < cols; j++) {
      const a = Math.abs(Math.fround(W[i * cols + j]!));
      const b = bo + Math.floor(j / FP8_BLOCK);
      if (a > amax[b]!) amax[b] = a;
    }
  }
  const scales = new Float32Array(br * bc);
  for (let b = 0; b < br * bc; b++) scales[b] = fp8TrainScale(amax[b]!, cfg);
  const codes = new Uint8Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    const bo = Math.floor(i / FP8_BLOCK) * bc;
    for (let j = 0; j < cols; j++) {
      const s = scales[bo + Math.floor(j / FP8_BLOCK)]!;
      codes[i * cols + j] = e4m3FromNumber(Math.fround(Math.fround(W[i * cols + j]!) / s), { saturate: true });
    }
  }
  return { codes, scales, rows, cols };
}

/** The B operand of a GEMM: codes [n, kPad] and scales per row (`'row'`, [n, kPad/128]) or per 128 rows (`'block'`, [ceil(n/128), kPad/128]). */
export interface Fp8Operand {
  codes: Uint8Array;
  scales: Float32Array;
  scaleRows: 'row' | 'block';
}

/** W's blocks as the B operand of Fprop: codes [out, pad128(in)] (zero-padded K), block scales as stored. */
export function fpropWeight(q: Fp8Blocks): Fp8Operand {
  const kPad = pad128(q.cols);
  let codes = q.codes;
  if (kPad !== q.cols) {
    codes = new Uint8Array(q.rows * kPad);
    for (let r = 0; r < q.rows; r++) codes.set(q.codes.subarray(r * q.cols, (r + 1) * q.cols), r * kPad);
  }
  return { codes, scales: q.scales, scaleRows: 'block' };
}

/** Wᵀ's blocks as the B operand of Dgrad: codes [in, pad128(out)], scales transposed [ceil(in/128), ceil(out/128)]. */
export function dgradWeight(q: Fp8Blocks): Fp8Operand {
  const kPad = pad128(q.rows);
  const codes = new Uint8Array(q.cols * kPad);
  for (let r = 0; r < q.rows; r++) for (let c = 0; c < q.cols; c++) codes[c * kPad + r] = q.codes[r * q.cols + c]!;
  const br = Math.ceil(q.rows / FP8_BLOCK);
  const bc = Math.ceil(q.cols / FP8_BLOCK);
  const scales = new Float32Array(br * bc);
  for (let i = 0; i < br; i++) for (let j = 0; j < bc; j++) scales[j * br + i] = q.scales[i * bc + j]!;
  return { codes, scales, scaleRows: 'block' };
}

/** Dequantized values code·scale of an operand [n, kPad] in f64 (exact: a 4-bit by 24-bit significand product). */
function dequantF64(codes: Uint8Array, scales: Float32Array, n: number, kPad: number, scaleRows: 'row' | 'block'): Float64Array {
  const kb = kPad / FP8_BLOCK;
  const out = new Float64Array(n * kPad);
  for (let r = 0; r < n; r++) {
    const so = (scaleRows === 'row' ? r : Math.floor(r / FP8_BLOCK)) * kb;
    for (let c = 0; c < kPad; c++) out[r * kPad + c] = E4M3_TABLE[codes[r * kPad + c]!]! * scales[so + Math.floor(c / FP8_BLOCK)]!;
  }
  return out;
}

/**
 * C [m, n] = A·Bᵀ over the quantized operands (A: 1×128 tiles [m, kPad]; B [n, kPad]).
 * float32: the official fp8_gemm formula (exact block dot products, ·aS then ·bS in f32, f32 accumulation in block
 * order) by the FP8 kernel; a B with per-row scales runs as n single-row GEMMs (the kernel's B scales are per 128 rows).
 * float64: the same operands dequantized exactly and multiplied in f64 (the f64 evaluation of the same formula).
 */
export function fp8TrainGemm(A: Fp8Tiles, B: Fp8Operand, n: number, dtype: DType): FloatArray {
  const { rows: m, kPad } = A;
  const kb = kPad / FP8_BLOCK;
  if (dtype === 'float64') {
    const a = dequantF64(A.codes, A.scales, m, kPad, 'row');
    const b = dequantF64(B.codes, B.scales, n, kPad, B.scaleRows);
    const c = allocate('float64', m * n);
    if (m * n > 0) kernelsFor('float64').matmul('nt', a, b, c, m, n, kPad);
    return c;
  }
  if (B.scaleRows === 'block') return fp8Gemm(A.codes, A.scales, B.codes, B.scales, m, n, kPad, { out: 'float32' });
  const c = new Float32Array(m * n);
  for (let j = 0; j < n; j++) {
    const col = fp8Gemm(A.codes, A.scales, B.codes.subarray(j * kPad, (j + 1) * kPad), B.scales.subarray(j * kb, (j + 1) * kb), m, 1, kPad, {
      out: 'float32',
    });
    for (let i = 0; i < m; i++) c[i * n + j] = col[i]!;
  }
  return c;
}
