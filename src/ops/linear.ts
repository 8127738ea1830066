/**
 * The Linear op (bias-free, W [out, in] as in the HF checkpoint), forward and backward, used by every projection of
 * the model: attention q_a/q_b/q, kv_a, kv_b, o_proj; the MLP's gate/up/down (dense, shared and routed experts);
 * MTP's eh_proj; the output head.
 *
 *   Fprop  y  = x·Wᵀ          y [N, out], x [N, in]
 *   Dgrad  dx += dy·W          dx [N, in]
 *   Wgrad  dW += dyᵀ·x         dW [out, in]
 *
 * How the three GEMMs run is the {@link LinearGemm} of the call site: exact (the model's dtype) or `'fp8-train'`,
 * the tech report's block-scaled FP8 recipe (fp8_train.ts), with a straight-through treatment of the quantizers in
 * the backward (the gradient of the quantized computation treats each quantize as the identity).
 */
import { InputError } from '../errors.js';
import { kernelsFor } from '../kernels/index.js';
import { allocate, dtypeOf, type FloatArray } from '../tensor.js';
import { dequantizeInt, quantizeInt, type IntQuantScheme } from './int_quant.js';
import { loraBranchBackward, loraBranchForward, type LoraDropoutGemm } from './lora_branch.js';
import {
  dgradWeight,
  fp8TrainGemm,
  fpropWeight,
  pad128,
  padColumnsF32,
  quantizeTiles,
  quantizeWeightBlocks,
  resolveFp8TrainOptions,
  transposePadF32,
  type Fp8Blocks,
  type Fp8Tiles,
  type Fp8TrainConfig,
  type Fp8TrainOptions,
} from './fp8_train.js';

/** Training numerics: the model's own dtype (`'exact'`) or the FP8 training emulation (`'fp8-train'`). */
export type TrainNumerics = 'exact' | 'fp8-train';

/** Receives a named tensor (structurally the model's TraceFn; quantized codes come as Int32Array bit patterns). */
export type OperandTrace = (name: string, shape: readonly number[], data: Float32Array | Float64Array | Int32Array) => void;

/**
 * How a Linear runs its GEMMs; `trace` receives each FP8 GEMM's quantized operands (docs/components/fp8-training.md).
 * `weights` caches each weight's 128×128 quantization for Fprop and Dgrad: one object per training step (the
 * weights must not change while it is in use).
 */
export type LinearGemm =
  | { kind: 'exact' }
  | { kind: 'fp8-train'; config: Fp8TrainConfig; trace?: OperandTrace; weights?: WeakMap<FloatArray, Fp8Blocks> }
  | ActQuantGemm
  | LoraDropoutGemm;

/**
 * Exact GEMMs on a fake-quantized input at the selected sites: x̂ = dequant(quant(x)) with one row (token) per
 * scale group (int_quant.ts), y = x̂·Wᵀ, dW += dyᵀ·x̂; dx += dy·W straight through the quantizer ('identity'), or
 * only where x was not clipped ('clipped'). docs/components/fake-quant.md.
 */
export interface ActQuantGemm {
  kind: 'act-quant';
  scheme: IntQuantScheme;
  ste: 'identity' | 'clipped';
  /** Which sites quantize their input, by HF module path (the others run exact). */
  select: (name: string) => boolean;
}

/** The exact GEMMs. */
export const EXACT_GEMM: LinearGemm = Object.freeze({ kind: 'exact' });

/** A Linear call site: its GEMM mode and its HF module path (names the traced operands), e.g. `model.layers.0.mlp.gate_proj`. */
export interface LinearSite {
  gemm: LinearGemm;
  name: string;
}

/** Checks a training-numerics name (CLI strings, untyped JS). */
export function parseTrainNumerics(v: unknown, where = 'numerics'): TrainNumerics {
  if (v === 'exact' || v === 'fp8-train') return v;
  throw new InputError(`${where}: unknown training numerics ${JSON.stringify(v)}; expected 'exact' or 'fp8-train'`);
}

/** The {@link LinearGemm} of a training call: `numerics` with its options (validated here). */
export function linearGemmFor(numerics: TrainNumerics | undefined, fp8Train: Fp8TrainOptions | undefined, trace?: OperandTrace, where = 'lossAndGrads'): LinearGemm {
  const n = parseTrainNumerics(numerics ?? 'exact', `${where}: numerics`);
  if (n === 'exact') {
    if (fp8Train !== undefined) throw new InputError(`${where}: fp8Train options need numerics 'fp8-train'`);
    return EXACT_GEMM;
  }
  const config = resolveFp8TrainOptions(fp8Train, where);
  if (config.disableQuant) return EXACT_GEMM;
  const weights = new WeakMap<FloatArray, Fp8Blocks>();
  return trace !== undefined ? { kind: 'fp8-train', config, trace, weights } : { kind: 'fp8-train', config, weights };
}

/** True when the site runs quantized GEMMs. */
function fp8Of(site: LinearSite | undefined): { config: Fp8TrainConfig; trace: OperandTrace | undefined; name: string; quantW: (W: FloatArray, out: number, inn: number) => Fp8Blocks } | null {
  if (site === undefined || site.gemm.kind !== 'fp8-train') return null;
  const { config, trace, weights } = site.gemm;
  const quantW = (W: FloatArray, out: number, inn: number): Fp8Blocks => {
    let q = weights?.get(W);
    if (q === undefined || q.rows !== out || q.cols !== inn) {
      q = quantizeWeightBlocks(W, out, inn, config);
      weights?.set(W, q);
    }
    return q;
  };
  return { config, trace, name: site.name, quantW };
}

/** Traces the codes (bit patterns, I32) and scales of a tile-quantized operand, without its zero padding. */
function traceTiles(trace: OperandTrace | undefined, name: string, q: Fp8Tiles, cols: number): void {
  if (trace === undefined) return;
  const codes = new Int32Array(q.rows * cols);
  for (let r = 0; r < q.rows; r++) for (let c = 0; c < cols; c++) codes[r * cols + c] = q.codes[r * q.kPad + c]!;
  const kb = Math.ceil(cols / 128);
  const full = q.kPad / 128;
  const scales = new Float32Array(q.rows * kb);
  for (let r = 0; r < q.rows; r++) for (let b = 0; b < kb; b++) scales[r * kb + b] = q.scales[r * full + b]!;
  trace(`${name}.codes`, [q.rows, cols], codes);
  trace(`${name}.scales`, [q.rows, kb], scales);
}

/** x̂ and the clipped-STE mask of an act-quant site (null: the site runs on x as is). */
function actQuantOf(site: LinearSite | undefined, x: FloatArray, rows: number, inDim: number): { xq: FloatArray; pass: Uint8Array | null } | null {
  if (site === undefined || site.gemm.kind !== 'act-quant' || !site.gemm.select(site.name)) return null;
  const q = quantizeInt(x, rows, inDim, site.gemm.scheme); // one row = one token
  return { xq: dequantizeInt(q), pass: site.gemm.ste === 'clipped' ? q.inRange : null };
}

/** y[rows, outDim] = x[rows, inDim]·Wᵀ (W [outDim, inDim]), exact or as the site's FP8 Fprop. */
export function linearForward(x: FloatArray, W: FloatArray, rows: number, outDim: number, inDim: number, site?: LinearSite): FloatArray {
  const dtype = dtypeOf(x);
  const f = fp8Of(site);
  if (f === null) {
    const y = allocate(dtype, rows * outDim);
    kernelsFor(dtype).matmul('nt', actQuantOf(site, x, rows, inDim)?.xq ?? x, W, y, rows, outDim, inDim);
    if (site?.gemm.kind === 'lora-dropout') loraBranchForward(site.gemm, site.name, x, y, rows, outDim, inDim);
    return y;
  }
  // Fprop: x in 1×128 tiles (per token), W in 128×128 blocks
  const xq = quantizeTiles(padColumnsF32(x, rows, inDim), rows, pad128(inDim), f.config);
  const wq = f.quantW(W, outDim, inDim);
  traceTiles(f.trace, `${f.name}:fprop.x`, xq, inDim);
  if (f.trace !== undefined) {
    f.trace(`${f.name}:fprop.w.codes`, [outDim, inDim], Int32Array.from(wq.codes));
    f.trace(`${f.name}:fprop.w.scales`, [Math.ceil(outDim / 128), Math.ceil(inDim / 128)], wq.scales);
  }
  const y = fp8TrainGemm(xq, fpropWeight(wq), outDim, dtype);
  f.trace?.(`${f.name}:fprop.out`, [rows, outDim], y);
  return y;
}

/**
 * Backward of {@link linearForward}: dW += dyᵀ·x; dx += dy·W into the given dx (or a fresh array, returned). Under
 * FP8 the quantizers are straight-through: Dgrad quantizes dy (1×128) and reuses W's 128×128 blocks transposed;
 * Wgrad quantizes dyᵀ and xᵀ (128×1 along tokens) from the high-precision dy and x.
 */
export function linearBackward(
  x: FloatArray,
  W: FloatArray,
  dy: FloatArray,
  dW: FloatArray,
  rows: number,
  outDim: number,
  inDim: number,
  dx?: FloatArray,
  site?: LinearSite,
): FloatArray {
  const dtype = dtypeOf(x);
  const k = kernelsFor(dtype);
  const out = dx ?? allocate(dtype, rows * inDim);
  const f = fp8Of(site);
  if (f === null) {
    if (site?.gemm.kind === 'lora-dropout') loraBranchBackward(site.gemm, site.name, x, dy, out, rows, outDim, inDim);
    const aq = actQuantOf(site, x, rows, inDim);
    k.matmul('tn', dy, aq?.xq ?? x, dW, outDim, inDim, rows, true); // y = x̂·Wᵀ: dW += dyᵀ·x̂
    if (aq?.pass == null) {
      k.matmul('nn', dy, W, out, rows, inDim, outDim, true); // STE: dx̂/dx = 1
      return out;
    }
    const dxq = allocate(dtype, rows * inDim);
    k.matmul('nn', dy, W, dxq, rows, inDim, outDim);
    for (let i = 0; i < rows * inDim; i++) if (aq.pass[i] === 1) out[i] = out[i]! + dxq[i]!; // clipped STE
    return out;
  }
  // Dgrad: dy in 1×128 tiles (per token, along out), Wᵀ in the same 128×128 blocks as Fprop
  const dyq = quantizeTiles(padColumnsF32(dy, rows, outDim), rows, pad128(outDim), f.config);
  traceTiles(f.trace, `${f.name}:dgrad.dy`, dyq, outDim);
  const wq = f.quantW(W, outDim, inDim);
  const dxq = fp8TrainGemm(dyq, dgradWeight(wq), inDim, dtype);
  f.trace?.(`${f.name}:dgrad.out`, [rows, inDim], dxq);
  for (let i = 0; i < rows * inDim; i++) out[i] = out[i]! + dxq[i]!;
  // Wgrad: dyᵀ [out, N] and xᵀ [in, N] in 128×1 tiles along the token axis (1×128 tiles of the transposes)
  const dyT = quantizeTiles(transposePadF32(dy, rows, outDim), outDim, pad128(rows), f.config);
  const xT = quantizeTiles(transposePadF32(x, rows, inDim), inDim, pad128(rows), f.config);
  traceTiles(f.trace, `${f.name}:wgrad.dyT`, dyT, rows);
  traceTiles(f.trace, `${f.name}:wgrad.xT`, xT, rows);
  const dWq = fp8TrainGemm(dyT, { codes: xT.codes, scales: xT.scales, scaleRows: 'row' }, inDim, dtype);
  for (let i = 0; i < outDim * inDim; i++) dW[i] = dW[i]! + dWq[i]!;
  return out;
}
