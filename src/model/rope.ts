/**
 * Rotary position embedding with interleaved pairs (SPEC §3.4), YaRN frequencies and the
 * YaRN softmax-scale correction (SPEC §3.5).
 *
 * YaRN is decided from the config (`ropeScaling != null`), never from a cache length: the
 * official code switches it on only when max_seq_len > original_seq_len, which would silently
 * change the numerics of the context-extended checkpoint at short cache lengths (HF behaviour).
 */
import { InputError, ShapeError } from '../errors.js';
import { kernelsFor } from '../kernels/index.js';
import { allocate, dtypeOf, type DType, type FloatArray } from '../tensor.js';
import type { ModelConfig, YarnConfig } from './config.js';

/** cdim(n) = R·ln(L₀ / (2π·n)) / (2·ln base): the pair index that completes n rotations over L₀ tokens. */
function yarnCorrectionDim(numRotations: number, dim: number, base: number, originalLen: number): number {
  return (dim * Math.log(originalLen / (numRotations * 2 * Math.PI))) / (2 * Math.log(base));
}

/**
 * The YaRN correction range (SPEC §3.5 step 2): low = max(floor(cdim(beta_fast)), 0),
 * high = min(ceil(cdim(beta_slow)), R − 1). Pairs j ≤ low keep ω (extrapolation), j ≥ high get ω/s.
 */
export function yarnCorrectionRange(dim: number, base: number, yarn: YarnConfig): { low: number; high: number } {
  const low = Math.floor(yarnCorrectionDim(yarn.betaFast, dim, base, yarn.originalMaxPositionEmbeddings));
  const high = Math.ceil(yarnCorrectionDim(yarn.betaSlow, dim, base, yarn.originalMaxPositionEmbeddings));
  return { low: Math.max(low, 0), high: Math.min(high, dim - 1) };
}

/** ramp_j = clamp((j − low)/(high − low), 0, 1) for j < halfDim; low == high uses high + 0.001 (official code). */
export function yarnRamp(low: number, high: number, halfDim: number): Float64Array {
  const hi = low === high ? high + 0.001 : high;
  const ramp = new Float64Array(halfDim);
  for (let j = 0; j < halfDim; j++) ramp[j] = Math.min(Math.max((j - low) / (hi - low), 0), 1);
  return ramp;
}

/**
 * The rotation frequency of each pair, ω_i = base^(−2i/R) for i < R/2 (in f64). With YaRN:
 * ω'_j = ω_j/s · ramp_j + ω_j · (1 − ramp_j) (official: smooth = 1 − ramp).
 */
export function ropeInvFrequencies(config: ModelConfig): Float64Array {
  const R = config.qkRopeHeadDim;
  if (R <= 0 || R % 2 !== 0) throw new ShapeError(`qk_rope_head_dim must be positive and even, got ${R}`);
  const base = config.ropeTheta;
  const half = R / 2;
  const omega = new Float64Array(half);
  for (let i = 0; i < half; i++) omega[i] = Math.pow(base, -(2 * i) / R);
  const yarn = config.ropeScaling;
  if (yarn === null) return omega;
  const { low, high } = yarnCorrectionRange(R, base, yarn);
  const ramp = yarnRamp(low, high, half);
  const s = yarn.factor;
  for (let j = 0; j < half; j++) omega[j] = (omega[j]! / s) * ramp[j]! + omega[j]! * (1 - ramp[j]!);
  return omega;
}

/** YaRN attention factor mscale(s, m) = 0.1·m·ln(s) + 1, and 1 when s ≤ 1 (SPEC §3.5). */
export function yarnMscale(factor: number, m: number): number {
  return factor <= 1 ? 1 : 0.1 * m * Math.log(factor) + 1;
}

/**
 * The softmax scale τ = qk_head_dim^(−1/2) · mscale(s, mscale_all_dim)² (the YaRN correction
 * multiplies the logits by mscale², because q and k would each carry one mscale).
 */
export function softmaxScale(config: ModelConfig): number {
  const tau = 1 / Math.sqrt(config.qkNopeHeadDim + config.qkRopeHeadDim);
  const yarn = config.ropeScaling;
  if (yarn === null) return tau;
  const m = yarnMscale(yarn.factor, yarn.mscaleAllDim);
  return tau * m * m;
}

/** cos/sin of θ[p, i] = p·ω_i for positions p < maxPositions, each [maxPositions, halfDim] row-major. */
export interface RopeTables {
  cos: FloatArray;
  sin: FloatArray;
  maxPositions: number;
  halfDim: number;
}

/**
 * Builds the RoPE tables: angles θ = p·ω and their cos/sin in f64, then stored in `dtype`.
 * (The official code computes θ in f32; the golden f32 tables differ by ≤ p·ω·2⁻²³.)
 * No cos/sin attention factor is applied: the official code has none (HF's
 * mscale(s, mscale)/mscale(s, mscale_all_dim) is 1 for every released config).
 */
export function buildRopeTables(config: ModelConfig, maxPositions: number, dtype: DType): RopeTables {
  if (!Number.isInteger(maxPositions) || maxPositions < 0) throw new InputError(`buildRopeTables: maxPositions must be a non-negative integer, got ${maxPositions}`);
  const omega = ropeInvFrequencies(config);
  const half = omega.length;
  const cos = allocate(dtype, maxPositions * half);
  const sin = allocate(dtype, maxPositions * half);
  for (let p = 0; p < maxPositions; p++) {
    for (let i = 0; i < half; i++) {
      const theta = p * omega[i]!;
      cos[p * half + i] = Math.cos(theta);
      sin[p * half + i] = Math.sin(theta);
    }
  }
  return { cos, sin, maxPositions, halfDim: half };
}

function checkRope(where: string, tables: RopeTables, x: FloatArray, pos: Int32Array, rows: number, dim: number): void {
  if (dim !== 2 * tables.halfDim) throw new ShapeError(`${where}: row width ${dim} != 2·halfDim of the tables (${2 * tables.halfDim})`);
  if (x.length !== rows * dim) throw new ShapeError(`${where}: input has ${x.length} elements, expected rows·dim = ${rows}·${dim}`);
  if (pos.length < rows) throw new ShapeError(`${where}: ${pos.length} positions for ${rows} rows`);
  if (dtypeOf(x) !== dtypeOf(tables.cos)) throw new ShapeError(`${where}: input is ${dtypeOf(x)} but the tables are ${dtypeOf(tables.cos)}`);
  for (let r = 0; r < rows; r++) {
    const p = pos[r]!;
    if (p < 0 || p >= tables.maxPositions) {
      throw new InputError(`${where}: position ${p} (row ${r}) outside the RoPE tables [0, ${tables.maxPositions})`);
    }
  }
}

/**
 * RoPE forward on `rows` vectors of width `dim` (= R): row r is rotated at position pos[r],
 * pair (x_2i, x_2i+1) by θ = pos·ω_i. Returns a fresh array.
 */
export function ropeForward(tables: RopeTables, x: FloatArray, pos: Int32Array, rows: number, dim: number): FloatArray {
  checkRope('ropeForward', tables, x, pos, rows, dim);
  const y = allocate(dtypeOf(x), rows * dim);
  kernelsFor(dtypeOf(x)).rope(x, y, tables.cos, tables.sin, pos, rows, dim, false);
  return y;
}

/**
 * RoPE backward: the gradient of a rotation by θ is the rotation of dy by −θ. ACCUMULATES into dx.
 */
export function ropeBackward(tables: RopeTables, dy: FloatArray, pos: Int32Array, rows: number, dim: number, dx: FloatArray): void {
  checkRope('ropeBackward', tables, dy, pos, rows, dim);
  if (dx.length !== rows * dim) throw new ShapeError(`ropeBackward: dx has ${dx.length} elements, expected ${rows * dim}`);
  const k = kernelsFor(dtypeOf(dy));
  const t = allocate(dtypeOf(dy), rows * dim);
  k.rope(dy, t, tables.cos, tables.sin, pos, rows, dim, true);
  k.axpy(1, t, dx, rows * dim);
}
